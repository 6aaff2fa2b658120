// The recovery journal: where a migration run is, durably, so that a restart after a crash or
// kill -9 resumes at the last committed chunk instead of re-reading the whole source.
//
// SQLite in WAL mode with synchronous=FULL: a checkpoint returned from commit() survives a power
// cut. Writes to the target are idempotent (replace by `_id`), so replaying the chunk that was in
// flight at the crash yields the same end state.
#pragma once

#include <sqlite3.h>

#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>

namespace fhirshift::migrate {

class JournalError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct JournalState {
  std::string run_id;
  std::string source;  // "<redacted uri> <collection>", to refuse a journal of another source
  std::string target;
  std::string checkpoint_id;  // hex ObjectId of the last entry applied in `_id` order; "" at start
  int64_t entries_applied = 0;
};

class Journal {
 public:
  // Opens (creating the directory and file if needed) DIR/journal.sqlite3.
  explicit Journal(const std::filesystem::path& dir);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // The saved state, or nullopt for a new journal.
  std::optional<JournalState> load();
  // Starts a run: stores run id, source and target with an empty checkpoint.
  void begin(const JournalState& state);
  // Durably records that every source entry with `_id` <= checkpoint_id has been applied.
  void commit(const std::string& checkpoint_id, int64_t entries_applied);

 private:
  void exec(const char* sql);
  void set(const std::string& key, const std::string& value);
  std::filesystem::path path_;
  sqlite3* db_ = nullptr;
};

}  // namespace fhirshift::migrate
