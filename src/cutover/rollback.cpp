#include "cutover/rollback.h"

#include <signal.h>

#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "cutover/adapters.h"
#include "cutover/process.h"
#include "mongo/bson.h"
#include "mongo/client.h"

namespace fhirshift::cutover {

std::string stop_migrator(const std::string& pid_file, std::chrono::milliseconds timeout) {
  std::ifstream in(pid_file);
  if (!in) throw RollbackError("cannot read the migrator's pid file " + pid_file);
  long long pid_value = 0;
  if (!(in >> pid_value) || pid_value <= 1)
    throw RollbackError("pid file " + pid_file + " does not hold a process id");
  pid_t pid = static_cast<pid_t>(pid_value);
  if (::kill(pid, 0) != 0)
    return "migrator (pid " + std::to_string(pid) + " from " + pid_file + ") is not running";
  if (!process_matches(pid, {"fhirshift", "migrate"}))
    throw RollbackError("pid " + std::to_string(pid) + " from " + pid_file +
                        " is not a `fhirshift migrate` process (stale pid file?): stop the "
                        "migrator yourself (Ctrl-C or SIGTERM), then run rollback without "
                        "--migrator-pid-file");
  ::kill(pid, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!process_matches(pid, {"fhirshift", "migrate"}))
      return "migrator (pid " + std::to_string(pid) + ") stopped on SIGTERM";
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  throw RollbackError("migrator (pid " + std::to_string(pid) + ") did not exit within " +
                      std::to_string(timeout.count() / 1000) +
                      " s of SIGTERM; it may be finishing a batch: wait, or kill it (its journal "
                      "keeps the copy consistent either way)");
}

namespace {

// The part of a URI that names a deployment: hosts (sorted as given) and database.
std::string identity(const mongo::Uri& uri, const std::string& collection) {
  return uri.hosts() + "/" + uri.database() + "." + collection;
}

}  // namespace

std::vector<std::string> drop_target_and_journal(const DropTargetRequest& req) {
  std::vector<std::string> done;
  if (req.target_uri.empty())
    throw RollbackError("--drop-target needs the target: --mongoConnectionstring");
  if (req.journal_dir.empty())
    throw RollbackError("--drop-target needs --delete-journal DIR as well (both or neither)");
  mongo::Uri target = mongo::Uri::parse(req.target_uri);
  const std::string ns = target.database() + "." + req.target_collection;
  if (!req.source_uri.empty()) {
    mongo::Uri source = mongo::Uri::parse(req.source_uri);
    if (identity(source, req.source_collection) == identity(target, req.target_collection))
      throw RollbackError("refusing to drop " + ns + " on " + target.hosts() +
                          ": it is the SOURCE (same hosts, database and collection)");
  }
  namespace fs = std::filesystem;
  fs::path journal(req.journal_dir);
  std::error_code ec;
  if (!fs::is_directory(journal, ec))
    throw RollbackError("journal directory " + req.journal_dir +
                        " does not exist: pass the directory given to migrate's "
                        "--useRecoveryJournal (nothing was dropped)");
  fs::path canonical = fs::weakly_canonical(journal, ec);
  if (canonical == canonical.root_path() || canonical == fs::path(std::getenv("HOME") ? std::getenv("HOME") : "/"))
    throw RollbackError("refusing to delete " + canonical.string() + " as a journal directory");

  mongo::ClientPool pool(target);
  mongo::Client client = pool.acquire();
  client.ping();
  mongo::Collection coll = client.collection(target.database(), req.target_collection);
  mongo::Builder filter;
  filter.append("_id", "system");
  mongo::Bson f = filter.extract();
  auto system = coll.find_one(f.get());
  int64_t entries = coll.count(mongo::Bson().get());
  if (!system) {
    if (entries > 0)
      throw RollbackError(ns + " on " + target.hosts() + " holds " + std::to_string(entries) +
                          " documents but no system document: it was not provisioned by "
                          "fhirshift, refusing to drop it");
  } else {
    auto version = mongo::View(system->get()).integer("schemaVersion");
    if (!version || *version != 2)
      throw RollbackError(ns + " on " + target.hosts() + " has schemaVersion " +
                          (version ? std::to_string(*version) : std::string("(none)")) +
                          ": it is not a current-schema target (a legacy store is schemaVersion 1), "
                          "refusing to drop it");
  }

  // Journal first, by an atomic rename, so an interruption never leaves a journal without its target.
  fs::path parked = journal;
  parked += ".rollback-" + std::to_string(::getpid());
  fs::rename(journal, parked, ec);
  if (ec)
    throw RollbackError("cannot move the journal " + journal.string() + " aside: " + ec.message() +
                        " (nothing was dropped)");
  try {
    coll.drop();
  } catch (const std::exception& e) {
    std::error_code back;
    fs::rename(parked, journal, back);
    throw RollbackError(std::string("dropping ") + ns + " failed: " + e.what() +
                        (back ? "; the journal is at " + parked.string() +
                                    ": move it back to " + journal.string()
                              : "; the journal was put back"));
  }
  done.push_back("dropped " + ns + " on " + target.hosts() + " (" + std::to_string(entries) +
                 " documents)");
  fs::remove_all(parked, ec);
  if (ec)
    done.push_back("WARNING: could not delete " + parked.string() + ": " + ec.message() +
                   " (delete it by hand; it is no longer used)");
  else
    done.push_back("deleted the recovery journal " + journal.string());
  return done;
}

}  // namespace fhirshift::cutover
