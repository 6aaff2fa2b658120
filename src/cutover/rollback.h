// Rollback BEFORE the switch: the old server never stopped serving, so rolling back means stopping
// the migrator and, when the operator wants a clean slate, dropping the target AND deleting the
// recovery journal together. (Rollback AFTER the switch is the Switchover machine run new -> old
// behind reverse replication: see switchover.h and docs/cutover.md.)
//
// Why both or neither: the journal records how far the copy got. A journal without its target
// makes the next `migrate` resume past entries that no longer exist in the (new, empty) target, so
// it refuses (or, forced, leaves a hole); a target without its journal makes the next run start
// from zero over a full target: it works (writes are by _id) but redoes everything.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace fhirshift::cutover {

class RollbackError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Reads a pid from `pid_file`, checks that the process is a `fhirshift migrate` (never signals a
// recycled pid), sends SIGTERM and waits up to `timeout` for it to exit. Returns a one-line report.
// Throws RollbackError when the file is unreadable, the pid is some other program, or the migrator
// does not exit in time. A pid that no longer runs is reported, not an error.
std::string stop_migrator(const std::string& pid_file, std::chrono::milliseconds timeout);

struct DropTargetRequest {
  std::string target_uri;
  std::string target_collection = "vonkentries";
  std::string journal_dir;
  // The source, to refuse dropping it by mistake (same hosts, database and collection).
  std::string source_uri;
  std::string source_collection = "vonkentries";
};

// Deletes the journal and drops the target collection, in the order that is safe if interrupted
// (journal first: a target without a journal is only extra work). Refuses, with the reason, when:
// the target is the source, the target's system document is not the current schema's
// (schemaVersion 2, written by `provision`), or the journal directory does not exist.
// Returns the lines of what it did.
std::vector<std::string> drop_target_and_journal(const DropTargetRequest& request);

}  // namespace fhirshift::cutover
