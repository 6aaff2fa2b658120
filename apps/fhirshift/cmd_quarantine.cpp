// `fhirshift quarantine`: the review of what the migrator could not migrate (docs/runbook.md,
// "Reviewing the quarantine"). Everything here works on the target's `<collection>_quarantine`
// by `_id`; `retry` reads the source entries again and uses the migrator's Applier.
#include <pwd.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string_view>

#include "commands.h"
#include "common/iso8601.h"
#include "common/log.h"
#include "index/indexer.h"
#include "migrate/options.h"
#include "migrate/quarantine_retry.h"
#include "mongo/client.h"
#include "mongo/collection.h"
#include "quarantine/store.h"

namespace fhirshift::cli {
namespace {

struct QuarantineArgs {
  std::string target_uri;
  std::string target_collection = "vonkentries";
  std::string source_uri;
  std::string source_collection = "vonkentries";
  std::vector<std::string> ids;
  bool all = false;
  bool json = false;
  std::string reason;
  std::string by;
  std::string policy = "ErrorOnConflict";
  bool verbose = false;
};

constexpr size_t kBodyExcerptBytes = 300;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Who reviews: the OS user (as the audit trail of the legacy runbook had it).
std::string os_user() {
  if (const passwd* pw = ::getpwuid(::geteuid()); pw && pw->pw_name) return pw->pw_name;
  if (const char* user = std::getenv("USER")) return user;
  return "uid " + std::to_string(::geteuid());
}

// The records named by `ids`, or all of them with `all`; an id that is not in the quarantine is an
// error naming it.
std::vector<quarantine::Record> selected_records(quarantine::Store& store,
                                                 const QuarantineArgs& a) {
  if (a.all) return store.list();
  std::vector<bson_oid_t> oids;
  for (const auto& id : a.ids) {
    auto oid = mongo::oid_from_string(id);
    if (!oid) throw std::invalid_argument("'" + id + "' is not an entry _id (24 hex digits)");
    oids.push_back(*oid);
  }
  std::vector<quarantine::Record> records = store.get(oids);
  if (records.size() != oids.size()) {
    std::string unknown;
    for (const auto& id : a.ids) {
      bool known = false;
      for (const auto& r : records) known = known || r.id_string() == id;
      if (!known) unknown += (unknown.empty() ? "" : ", ") + id;
    }
    throw std::invalid_argument("not in " + store.ns() + ": " + unknown +
                                " (fhirshift quarantine list shows what is)");
  }
  return records;
}

std::string status_text(const quarantine::Record& r,
                        const std::optional<bson_oid_t>& superseded_by) {
  if (r.accepted)
    return "accepted by " + r.accepted->by + " at " + format_iso8601(r.accepted->at_ms) + ": " +
           r.accepted->reason;
  if (superseded_by) return "superseded by " + mongo::oid_to_string(*superseded_by);
  return "open";
}

struct Session {
  explicit Session(const QuarantineArgs& a)
      : uri(mongo::Uri::parse(a.target_uri)),
        pool(uri, "fhirshift-quarantine"),
        client(pool.acquire()),
        store(client, uri.database(), a.target_collection) {}
  mongo::Uri uri;
  mongo::ClientPool pool;
  mongo::Client client;
  quarantine::Store store;
};

int run_list(const QuarantineArgs& a) {
  Session s(a);
  std::vector<quarantine::Record> records = s.store.list();
  // What verify will say: superseded as the target is now, not only as the migrator marked it.
  std::vector<const quarantine::Record*> open;
  for (const auto& r : records)
    if (!r.accepted) open.push_back(&r);
  mongo::Collection target = s.client.collection(s.uri.database(), a.target_collection);
  std::map<std::string, bson_oid_t> superseding = quarantine::find_superseding(target, open);
  auto superseded_by = [&](const quarantine::Record& r) -> std::optional<bson_oid_t> {
    if (auto it = superseding.find(r.id_string()); it != superseding.end()) return it->second;
    if (r.superseded) return r.superseded->by;
    return std::nullopt;
  };
  int64_t accepted = 0, superseded = 0;
  nlohmann::json out = nlohmann::json::array();
  for (const auto& r : records) {
    auto by = superseded_by(r);
    if (r.accepted)
      ++accepted;
    else if (by)
      ++superseded;
    if (a.json) {
      nlohmann::json j{
          {"id", r.id_string()},
          {"resource", r.resource()},
          {"reason", r.reason},
          {"message", r.message},
          {"at", r.at_ms ? nlohmann::json(format_iso8601(*r.at_ms)) : nlohmann::json()},
          {"status", r.accepted ? "accepted"
                     : by       ? "superseded"
                                : "open"}};
      if (r.accepted)
        j["accepted"] = {{"by", r.accepted->by},
                         {"at", format_iso8601(r.accepted->at_ms)},
                         {"reason", r.accepted->reason}};
      if (by) j["supersededBy"] = mongo::oid_to_string(*by);
      out.push_back(std::move(j));
    } else {
      std::cout << r.id_string() << "  " << r.resource() << "  " << r.reason << "  "
                << (r.at_ms ? format_iso8601(*r.at_ms) : "?") << "  " << status_text(r, by) << "\n";
    }
  }
  if (a.json) {
    std::cout << out.dump(2) << "\n";
  } else {
    const int64_t open_count = static_cast<int64_t>(records.size()) - accepted - superseded;
    std::cout << records.size() << " quarantined in " << s.store.ns() << ": " << open_count
              << " open, " << accepted << " accepted, " << superseded << " superseded";
    if (open_count > 0)
      std::cout
          << " (each open entry keeps verify DIFFERENT: fhirshift quarantine show ID, then fix "
             "the source entry and retry, or accept it)";
    std::cout << "\n";
  }
  return kExitOk;
}

int run_show(const QuarantineArgs& a) {
  Session s(a);
  std::vector<quarantine::Record> records = selected_records(s.store, a);
  for (const auto& r : records) {
    // The record as stored, except that the body is cut to its first bytes.
    nlohmann::json j = nlohmann::json::parse(r.document.to_json());
    for (const char* holder : {"entry", ""}) {
      nlohmann::json& doc = *holder ? j[holder] : j;
      for (const char* field : {"json", "text"})
        if (doc.is_object() && doc.contains(field) && doc[field].is_string()) {
          std::string body = doc[field].get<std::string>();
          if (body.size() > kBodyExcerptBytes)
            doc[field] = body.substr(0, kBodyExcerptBytes) + "... (" + std::to_string(body.size()) +
                         " bytes)";
        }
    }
    if (j.contains("entry") && j["entry"].is_null()) j.erase("entry");
    std::cout << "quarantined entry " << r.id_string() << " (" << r.resource() << ")\n"
              << "  reason:  " << r.reason << "\n  message: " << r.message << "\n  status:  "
              << status_text(r, r.superseded ? std::optional(r.superseded->by) : std::nullopt)
              << "\n"
              << j.dump(2) << "\n";
  }
  return kExitOk;
}

int run_retry(const QuarantineArgs& a) {
  migrate::ConflictPolicy policy = migrate::parse_conflict_policy(a.policy);
  Session s(a);
  std::vector<quarantine::Record> records = selected_records(s.store, a);
  if (records.empty()) {
    std::cout << "nothing to retry: " << s.store.ns() << " is empty\n";
    return kExitOk;
  }
  mongo::Uri source_uri = mongo::Uri::parse(a.source_uri);
  mongo::ClientPool source_pool(source_uri, "fhirshift-quarantine-source");
  source_pool.acquire().ping();
  auto indexer = index::Indexer::load(index::Indexer::default_definitions_path());
  std::vector<migrate::RetryOutcome> outcomes =
      migrate::retry_quarantined({source_pool, source_uri.database(), a.source_collection, s.pool,
                                  s.uri.database(), a.target_collection},
                                 records, policy, indexer);
  int64_t failing = 0;
  for (const auto& o : outcomes) {
    std::cout << o.id << "  " << o.resource << "  " << migrate::status_name(o.status) << ": "
              << o.detail << "\n";
    if (o.status == migrate::RetryOutcome::Status::kStillFailing ||
        o.status == migrate::RetryOutcome::Status::kNotRetryable)
      ++failing;
  }
  std::cout << outcomes.size() << " retried: " << outcomes.size() - static_cast<size_t>(failing)
            << " left the quarantine, " << failing << " still quarantined\n";
  return failing ? kExitFailure : kExitOk;
}

int run_accept(const QuarantineArgs& a) {
  Session s(a);
  std::vector<quarantine::Record> records = selected_records(s.store, a);
  std::vector<bson_oid_t> ids;
  for (const auto& r : records) ids.push_back(r.id);
  quarantine::Acceptance acceptance{a.by.empty() ? os_user() : a.by, now_ms(), a.reason};
  int64_t n = s.store.accept(ids, acceptance);
  for (const auto& r : records)
    std::cout << r.id_string() << "  " << r.resource() << "  accepted\n";
  std::cout
      << n << " accepted by " << acceptance.by << " (" << a.reason
      << "): verify counts them as accounted for; fhirshift quarantine unaccept ID takes it back\n";
  return kExitOk;
}

int run_unaccept(const QuarantineArgs& a) {
  Session s(a);
  std::vector<quarantine::Record> records = selected_records(s.store, a);
  std::vector<bson_oid_t> ids;
  for (const auto& r : records) ids.push_back(r.id);
  int64_t n = s.store.unaccept(ids);
  std::cout << n << " no longer accepted: verify reports them as missing again\n";
  return kExitOk;
}

int guarded(const char* what, const QuarantineArgs& a, const std::function<int()>& run) {
  init_logging(a.verbose);
  const bool selects = std::string_view(what) != "list";
  if (selects && a.ids.empty() && !a.all) {
    std::cerr << "fhirshift quarantine " << what << ": name the entries (their _ids) or --all\n";
    return kExitUsage;
  }
  try {
    return run();
  } catch (const std::invalid_argument& e) {
    std::cerr << "fhirshift quarantine " << what << ": " << e.what() << "\n";
    return kExitUsage;
  } catch (const std::exception& e) {
    spdlog::error("quarantine {} failed: {}", what, e.what());
    std::cerr << "fhirshift quarantine " << what << ": " << e.what() << "\n";
    return kExitFailure;
  }
}

void add_target_options(CLI::App* sub, QuarantineArgs& a) {
  sub->add_option(
         "--mongoConnectionstring,--mongoConnectionString", a.target_uri,
         "Current-schema target connection string (database in the path, default vonkdata)")
      ->required();
  sub->add_option("--mongoCollection", a.target_collection,
                  "Target collection; its quarantine is <collection>_quarantine")
      ->capture_default_str();
  sub->add_flag("-v,--verbose", a.verbose, "Debug logging");
}

void add_selection(CLI::App* sub, QuarantineArgs& a, bool allow_all) {
  auto* ids =
      sub->add_option("ids", a.ids, "Quarantined entry _ids (24 hex), as `list` shows them");
  if (allow_all) {
    auto* all = sub->add_flag("--all", a.all, "Every quarantined entry");
    ids->excludes(all);
  } else {
    ids->required();
  }
}

}  // namespace

void add_quarantine(CLI::App& app, Action& action) {
  auto a = std::make_shared<QuarantineArgs>();
  auto* q = app.add_subcommand(
      "quarantine",
      "Review the entries the migrator could not migrate (<collection>_quarantine of the target): "
      "list, show, retry after fixing the source, accept (verify then counts them as accounted "
      "for).");
  q->require_subcommand(1);
  q->footer(
      "\nAn open quarantined entry keeps verify (and so the cut-over) DIFFERENT. Fix the source\n"
      "entry and `retry` it, or `accept` it with a --reason: the target will not have it, and\n"
      "verify says EQUAL (...; N quarantined entries accepted). An entry whose resource has a\n"
      "newer version in the target is superseded: it does not block either. See docs/runbook.md.\n");

  auto* list = q->add_subcommand(
      "list", "One line per quarantined entry: _id, resource, reason, when, status");
  add_target_options(list, *a);
  list->add_flag("--json", a->json, "A JSON array instead of lines");
  list->final_callback(
      [a, &action] { action = [a] { return guarded("list", *a, [&] { return run_list(*a); }); }; });

  auto* show =
      q->add_subcommand("show", "The whole quarantine record, with the first bytes of the body");
  add_target_options(show, *a);
  add_selection(show, *a, false);
  show->final_callback(
      [a, &action] { action = [a] { return guarded("show", *a, [&] { return run_show(*a); }); }; });

  auto* retry = q->add_subcommand(
      "retry",
      "Read the entries from the source again and migrate them (after fixing them in the source)");
  add_target_options(retry, *a);
  add_selection(retry, *a, true);
  retry
      ->add_option("--srcMongoConnectionString,--srcMongoConnectionstring", a->source_uri,
                   "Legacy source connection string")
      ->required();
  retry->add_option("--srcMongoCollection", a->source_collection, "Source collection")
      ->capture_default_str();
  retry
      ->add_option("--update-existing-resources", a->policy,
                   "As for migrate: true, false, ErrorOnConflict or OnlyIfNewer")
      ->capture_default_str();
  retry->final_callback([a, &action] {
    action = [a] { return guarded("retry", *a, [&] { return run_retry(*a); }); };
  });

  auto* accept = q->add_subcommand(
      "accept", "Record that the target is not to have these entries (who, when, why)");
  add_target_options(accept, *a);
  add_selection(accept, *a, true);
  accept
      ->add_option("--reason", a->reason, "Why the target may do without them (kept in the record)")
      ->required();
  accept->add_option("--by", a->by, "Who reviewed (default: the OS user)");
  accept->final_callback([a, &action] {
    action = [a] { return guarded("accept", *a, [&] { return run_accept(*a); }); };
  });

  auto* unaccept =
      q->add_subcommand("unaccept", "Take an acceptance back: the entries block verify again");
  add_target_options(unaccept, *a);
  add_selection(unaccept, *a, true);
  unaccept->final_callback([a, &action] {
    action = [a] { return guarded("unaccept", *a, [&] { return run_unaccept(*a); }); };
  });
}

}  // namespace fhirshift::cli
