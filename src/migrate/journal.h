// The recovery journal: where a migration run is, durably, so that a restart after a crash or
// kill -9 resumes at the last committed chunk instead of re-reading the whole source.
//
// SQLite in WAL mode with synchronous=FULL: a checkpoint returned from commit() survives a power
// cut. Writes to the target are idempotent (replace by `_id`), so replaying the chunk that was in
// flight at the crash yields the same end state.
#pragma once

#include <sqlite3.h>

#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

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
  // The target held no entries when the run began, so every entry in it was written by this run
  // and the journal's heads are the truth about its version state (no target lookups needed).
  bool owns_target = false;
};

// The current entry the target holds for one resource (im, type, res_id), as this run wrote it.
struct Head {
  std::string cur_id;                  // hex _id of the current entry
  int64_t lu_ms = 0;                   // its lu, to order late versions against it
  std::vector<std::string> contained;  // hex _ids of its contained entries
  std::string v;                       // its version id ("" in a journal of an older fhirshift)
};
// A contained entry written before its container was in the target (writers may commit the
// container after its contained entries, or a late container arrives after them): it was written
// with the source's state and is set to its container's once the container is applied.
struct Orphan {
  std::string id;    // hex _id of the contained entry
  bool cur = false;  // the state it was written with
};
// What applying a chunk changed in an owned target's version state: its new heads and the
// contained entries waiting for their container. (The entries that became history are flipped in
// the chunk's own bulk writes.)
struct ChunkState {
  std::map<std::string, Head> heads;  // resource key -> its new head
  std::map<std::string, std::vector<Orphan>> orphans;  // container hex _id -> entries written before it
  std::vector<std::string> adopted;  // containers applied (their orphans set to their state)

  // Adds what a later application changed (a later head of the same resource wins).
  void merge(ChunkState&& later);
};
using HeadUpdates = std::map<std::string, Head>;

// Where a run keeps its journal: the operator's --useRecoveryJournal directory, or, without one
// (and always in a dry run, which never moves a journal), a temporary directory removed when the
// run ends.
class JournalDir {
 public:
  JournalDir(const std::optional<std::string>& requested, bool dry_run);
  ~JournalDir();
  JournalDir(const JournalDir&) = delete;
  JournalDir& operator=(const JournalDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  bool temporary_;
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
  // Durably records that every source entry with `_id` <= checkpoint_id has been applied, and
  // the heads that applying them changed, in one transaction.
  void commit(const std::string& checkpoint_id, int64_t entries_applied, const ChunkState& state = {});

  // Flips a journal of an earlier version committed but did not apply to the target (at most
  // `limit`); thread-safe.
  std::vector<std::string> pending_flips(size_t limit);
  // Forgets flips that were applied to the target.
  void flips_done(const std::vector<std::string>& ids);

  // Committed heads; thread-safe.
  std::optional<Head> head(const std::string& resource_key);
  // The resource key whose current entry has `_id` cur_id, if any; thread-safe.
  std::optional<std::string> key_of_current(const std::string& cur_id);
  // Contained entries written before their container `container_id` (hex), committed and not
  // adopted yet; thread-safe, and without a query for a container that has none (the usual case).
  std::vector<Orphan> orphans_of(const std::string& container_id);

  // Values of a run other than the engine's (the file importer's checkpoint and chunk plan),
  // under its own keys; nullopt when unset. put() writes all of `values` in one transaction.
  std::optional<std::string> value(const std::string& key);
  void put(const std::map<std::string, std::string>& values);

 private:
  void exec(const char* sql);
  // Runs `body` in one write transaction: committed whole, or rolled back and rethrown.
  void transaction(const std::function<void()>& body);
  void set(const std::string& key, const std::string& value);
  sqlite3_stmt* prepare(const char* sql);
  std::filesystem::path path_;
  sqlite3* db_ = nullptr;
  std::mutex mutex_;  // one connection, shared by the apply workers
  std::set<std::string> orphan_containers_;  // containers with committed orphans
};

}  // namespace fhirshift::migrate
