#include "migrate/journal.h"

#include <unistd.h>

#include <chrono>
#include <map>

namespace fhirshift::migrate {

namespace {
std::string join(const std::vector<std::string>& ids) {
  std::string out;
  for (const auto& id : ids) out += (out.empty() ? "" : ",") + id;
  return out;
}
std::vector<std::string> split(std::string_view s) {
  std::vector<std::string> out;
  while (!s.empty()) {
    size_t comma = s.find(',');
    out.emplace_back(s.substr(0, comma));
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  return out;
}
std::string text(sqlite3_stmt* stmt, int column) {
  const unsigned char* t = sqlite3_column_text(stmt, column);
  return t ? reinterpret_cast<const char*>(t) : "";
}
}  // namespace

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
  exec("CREATE TABLE IF NOT EXISTS heads (key TEXT PRIMARY KEY, cur_id TEXT NOT NULL, lu INTEGER NOT NULL, "
       "contained TEXT NOT NULL) WITHOUT ROWID");
  exec("CREATE INDEX IF NOT EXISTS heads_cur_id ON heads(cur_id)");
  // The head's version id (to find a duplicate of it in a later chunk), added 2026-12-03: a
  // journal written before gets the column, empty for the heads it holds.
  if (sqlite3_stmt* probe = nullptr; sqlite3_prepare_v2(db_, "SELECT v FROM heads LIMIT 0", -1, &probe, nullptr) == SQLITE_OK)
    sqlite3_finalize(probe);
  else
    exec("ALTER TABLE heads ADD COLUMN v TEXT NOT NULL DEFAULT ''");
  exec("CREATE TABLE IF NOT EXISTS pending_flips (id TEXT PRIMARY KEY) WITHOUT ROWID");
  exec("CREATE TABLE IF NOT EXISTS orphans (container TEXT NOT NULL, id TEXT NOT NULL, cur INTEGER NOT NULL, "
       "PRIMARY KEY (container, id)) WITHOUT ROWID");
  sqlite3_stmt* stmt = prepare("SELECT DISTINCT container FROM orphans");
  while (sqlite3_step(stmt) == SQLITE_ROW) orphan_containers_.insert(text(stmt, 0));
  sqlite3_finalize(stmt);
}

void ChunkState::merge(ChunkState&& later) {
  for (auto& [key, head] : later.heads) heads[key] = std::move(head);
  for (auto& [container, entries] : later.orphans) {
    auto& mine = orphans[container];
    mine.insert(mine.end(), entries.begin(), entries.end());
  }
  adopted.insert(adopted.end(), later.adopted.begin(), later.adopted.end());
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

sqlite3_stmt* Journal::prepare(const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, sql, -1, &stmt, nullptr) != SQLITE_OK)
    throw JournalError("recovery journal " + path_.string() + ": " + sqlite3_errmsg(db_));
  return stmt;
}


std::optional<Head> Journal::head(const std::string& resource_key) {
  std::lock_guard lock(mutex_);
  sqlite3_stmt* stmt = prepare("SELECT cur_id, lu, contained, v FROM heads WHERE key = ?");
  sqlite3_bind_text(stmt, 1, resource_key.data(), static_cast<int>(resource_key.size()), SQLITE_TRANSIENT);
  std::optional<Head> out;
  if (sqlite3_step(stmt) == SQLITE_ROW)
    out = Head{text(stmt, 0), sqlite3_column_int64(stmt, 1), split(text(stmt, 2)), text(stmt, 3)};
  sqlite3_finalize(stmt);
  return out;
}

std::optional<std::string> Journal::key_of_current(const std::string& cur_id) {
  std::lock_guard lock(mutex_);
  sqlite3_stmt* stmt = prepare("SELECT key FROM heads WHERE cur_id = ?");
  sqlite3_bind_text(stmt, 1, cur_id.c_str(), -1, SQLITE_TRANSIENT);
  std::optional<std::string> out;
  if (sqlite3_step(stmt) == SQLITE_ROW) out = text(stmt, 0);
  sqlite3_finalize(stmt);
  return out;
}

std::vector<Orphan> Journal::orphans_of(const std::string& container_id) {
  std::lock_guard lock(mutex_);
  std::vector<Orphan> out;
  if (!orphan_containers_.count(container_id)) return out;
  sqlite3_stmt* stmt = prepare("SELECT id, cur FROM orphans WHERE container = ?");
  sqlite3_bind_text(stmt, 1, container_id.c_str(), -1, SQLITE_TRANSIENT);
  while (sqlite3_step(stmt) == SQLITE_ROW) out.push_back({text(stmt, 0), sqlite3_column_int(stmt, 1) != 0});
  sqlite3_finalize(stmt);
  return out;
}

std::vector<std::string> Journal::pending_flips(size_t limit) {
  std::lock_guard lock(mutex_);
  sqlite3_stmt* stmt = prepare("SELECT id FROM pending_flips LIMIT ?");
  sqlite3_bind_int64(stmt, 1, static_cast<sqlite3_int64>(limit));
  std::vector<std::string> out;
  while (sqlite3_step(stmt) == SQLITE_ROW) out.push_back(text(stmt, 0));
  sqlite3_finalize(stmt);
  return out;
}

void Journal::flips_done(const std::vector<std::string>& ids) {
  std::lock_guard lock(mutex_);
  transaction([&] {
    sqlite3_stmt* stmt = prepare("DELETE FROM pending_flips WHERE id = ?");
    for (const auto& id : ids) {
      sqlite3_bind_text(stmt, 1, id.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_step(stmt);
      sqlite3_reset(stmt);
    }
    sqlite3_finalize(stmt);
  });
}

std::optional<std::string> Journal::value(const std::string& key) {
  std::lock_guard lock(mutex_);
  sqlite3_stmt* stmt = prepare("SELECT value FROM meta WHERE key = ?");
  sqlite3_bind_text(stmt, 1, key.c_str(), -1, SQLITE_TRANSIENT);
  std::optional<std::string> out;
  if (sqlite3_step(stmt) == SQLITE_ROW) out = text(stmt, 0);
  sqlite3_finalize(stmt);
  return out;
}

void Journal::put(const std::map<std::string, std::string>& values) {
  std::lock_guard lock(mutex_);
  transaction([&] {
    for (const auto& [key, v] : values) set(key, v);
  });
}

void Journal::transaction(const std::function<void()>& body) {
  exec("BEGIN IMMEDIATE");
  try {
    body();
    exec("COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
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
  s.owns_target = kv["ownsTarget"] == "1";
  return s;
}

void Journal::begin(const JournalState& state) {
  transaction([&] {
    set("runId", state.run_id);
    set("source", state.source);
    set("target", state.target);
    set("checkpoint", state.checkpoint_id);
    set("applied", std::to_string(state.entries_applied));
    set("ownsTarget", state.owns_target ? "1" : "0");
    exec("DELETE FROM heads");
    exec("DELETE FROM pending_flips");
    exec("DELETE FROM orphans");
  });
  orphan_containers_.clear();
}

JournalDir::JournalDir(const std::optional<std::string>& requested, bool dry_run)
    : temporary_(!requested || dry_run) {
  path_ = temporary_ ? std::filesystem::temp_directory_path() /
                           ("fhirshift-journal-" + std::to_string(::getpid()) + "-" +
                            std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()))
                     : std::filesystem::path(*requested);
}

JournalDir::~JournalDir() {
  std::error_code ec;
  if (temporary_) std::filesystem::remove_all(path_, ec);
}

void Journal::commit(const std::string& checkpoint_id, int64_t entries_applied, const ChunkState& state) {
  const HeadUpdates& heads = state.heads;
  std::lock_guard lock(mutex_);
  // Runs `sql` once per item, binding its parameters with `bind`.
  auto for_each_row = [&](const char* sql, const auto& items, auto bind) {
    if (items.empty()) return;
    sqlite3_stmt* stmt = prepare(sql);
    for (const auto& item : items) {
      bind(stmt, item);
      int rc = sqlite3_step(stmt);
      sqlite3_reset(stmt);
      if (rc != SQLITE_DONE) {
        sqlite3_finalize(stmt);
        throw JournalError("cannot write the recovery journal " + path_.string() + ": " + sqlite3_errmsg(db_));
      }
    }
    sqlite3_finalize(stmt);
  };
  transaction([&] {
    set("checkpoint", checkpoint_id);
    set("applied", std::to_string(entries_applied));
    for_each_row("INSERT OR REPLACE INTO heads(key, cur_id, lu, contained, v) VALUES (?, ?, ?, ?, ?)", heads,
                 [](sqlite3_stmt* stmt, const auto& row) {
                   const auto& [key, head] = row;
                   std::string contained = join(head.contained);
                   sqlite3_bind_text(stmt, 1, key.data(), static_cast<int>(key.size()), SQLITE_TRANSIENT);
                   sqlite3_bind_text(stmt, 2, head.cur_id.c_str(), -1, SQLITE_TRANSIENT);
                   sqlite3_bind_int64(stmt, 3, head.lu_ms);
                   sqlite3_bind_text(stmt, 4, contained.c_str(), -1, SQLITE_TRANSIENT);
                   sqlite3_bind_text(stmt, 5, head.v.c_str(), -1, SQLITE_TRANSIENT);
                 });
    for_each_row("DELETE FROM orphans WHERE container = ?", state.adopted,
                 [](sqlite3_stmt* stmt, const std::string& container) {
                   sqlite3_bind_text(stmt, 1, container.c_str(), -1, SQLITE_TRANSIENT);
                 });
    std::vector<std::pair<std::string, Orphan>> orphans;
    for (const auto& [container, entries] : state.orphans)
      for (const auto& o : entries) orphans.emplace_back(container, o);
    for_each_row("INSERT OR REPLACE INTO orphans(container, id, cur) VALUES (?, ?, ?)", orphans,
                 [](sqlite3_stmt* stmt, const std::pair<std::string, Orphan>& row) {
                   sqlite3_bind_text(stmt, 1, row.first.c_str(), -1, SQLITE_TRANSIENT);
                   sqlite3_bind_text(stmt, 2, row.second.id.c_str(), -1, SQLITE_TRANSIENT);
                   sqlite3_bind_int(stmt, 3, row.second.cur ? 1 : 0);
                 });
  });
  for (const auto& container : state.adopted) orphan_containers_.erase(container);
  for (const auto& [container, entries] : state.orphans) orphan_containers_.insert(container);
}

}  // namespace fhirshift::migrate
