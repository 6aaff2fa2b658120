#include "migrate/journal.h"

#include <map>

namespace fhirshift::migrate {

Journal::Journal(const std::filesystem::path& dir) : path_(dir / "journal.sqlite3") {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    throw JournalError("cannot create the recovery journal directory " + dir.string() + ": " +
                       ec.message());
  if (sqlite3_open(path_.c_str(), &db_) != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw JournalError("cannot open the recovery journal " + path_.string() + ": " + msg);
  }
  sqlite3_busy_timeout(db_, 5000);
  exec("PRAGMA journal_mode=WAL");
  exec("PRAGMA synchronous=FULL");
  exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
}

Journal::~Journal() { sqlite3_close(db_); }

void Journal::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    throw JournalError("recovery journal " + path_.string() + ": " + msg + " (in: " + sql + ")");
  }
}

void Journal::set(const std::string& key, const std::string& value) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", -1, &stmt,
                         nullptr) != SQLITE_OK)
    throw JournalError("recovery journal " + path_.string() + ": " + sqlite3_errmsg(db_));
  sqlite3_bind_text(stmt, 1, key.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(stmt, 2, value.c_str(), -1, SQLITE_TRANSIENT);
  int rc = sqlite3_step(stmt);
  sqlite3_finalize(stmt);
  if (rc != SQLITE_DONE)
    throw JournalError("cannot write the recovery journal " + path_.string() + ": " +
                       sqlite3_errmsg(db_));
}

std::optional<JournalState> Journal::load() {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, "SELECT key, value FROM meta", -1, &stmt, nullptr) != SQLITE_OK)
    throw JournalError("recovery journal " + path_.string() + ": " + sqlite3_errmsg(db_));
  std::map<std::string, std::string> kv;
  while (sqlite3_step(stmt) == SQLITE_ROW)
    kv[reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0))] =
        reinterpret_cast<const char*>(sqlite3_column_text(stmt, 1));
  sqlite3_finalize(stmt);
  if (!kv.count("runId")) return std::nullopt;
  JournalState s;
  s.run_id = kv["runId"];
  s.source = kv["source"];
  s.target = kv["target"];
  s.checkpoint_id = kv["checkpoint"];
  s.entries_applied = kv.count("applied") ? std::stoll(kv["applied"]) : 0;
  return s;
}

void Journal::begin(const JournalState& state) {
  exec("BEGIN IMMEDIATE");
  try {
    set("runId", state.run_id);
    set("source", state.source);
    set("target", state.target);
    set("checkpoint", state.checkpoint_id);
    set("applied", std::to_string(state.entries_applied));
    exec("COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

void Journal::commit(const std::string& checkpoint_id, int64_t entries_applied) {
  exec("BEGIN IMMEDIATE");
  try {
    set("checkpoint", checkpoint_id);
    set("applied", std::to_string(entries_applied));
    exec("COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

}  // namespace fhirshift::migrate
