// Options of the legacy migration tool that mean nothing to fhirshift: its license file and the
// knobs of its own read/index pipeline. They are accepted so that the legacy runbook's lines paste
// as they are (docs/runbook.md, "Coming from the legacy tool"), and each one given is named in
// one notice line, so an operator sees that it had no effect.
#pragma once

#include <CLI/CLI.hpp>
#include <map>
#include <memory>
#include <string>

namespace fhirshift::cli {

class LegacyOptions {
 public:
  // Registers the options on `sub` (values are kept as given, never interpreted).
  void add_to(CLI::App* sub);
  // One info line per option the command line gave, saying why it is ignored.
  void log_notices() const;

 private:
  // Option name -> the value given; options not given are absent.
  std::shared_ptr<std::map<std::string, std::string>> given_ =
      std::make_shared<std::map<std::string, std::string>>();
};

}  // namespace fhirshift::cli
