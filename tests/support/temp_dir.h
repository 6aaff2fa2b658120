// A fresh directory under $TMPDIR (or /tmp), removed with everything in it on destruction.
#pragma once

#include <filesystem>
#include <string>

namespace fhirshift::testing {

class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "fhirshift-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace fhirshift::testing
