// `fhirshift load check`: every version the ledger recorded must read back as written.
#include <httplib.h>

#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>

#include "load/load.h"

namespace fhirshift::load {
namespace {

using nlohmann::json;

struct Record {
  std::string op, type, id, v, hash;
  size_t line = 0;
};

std::string version_of(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (!j.is_object() || !j.contains("meta") || !j["meta"].is_object()) return "";
  return j["meta"].value("versionId", "");
}

}  // namespace

CheckReport check_ledger(const std::string& ledger, const std::string& url, int concurrency) {
  std::ifstream in(ledger);
  if (!in) throw std::runtime_error("cannot read the ledger " + ledger);
  std::vector<Record> records;
  std::map<std::string, std::vector<size_t>> by_resource;  // "Type/id" -> record indexes
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) continue;
    json j = json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("type") || !j.contains("id") || !j.contains("v"))
      throw std::runtime_error(ledger + ":" + std::to_string(n) + ": not a ledger record");
    Record r{j.value("op", ""), j["type"], j["id"], j["v"], j.value("hash", ""), n};
    by_resource[r.type + "/" + r.id].push_back(records.size());
    records.push_back(std::move(r));
  }

  CheckReport report;
  report.resources = static_cast<int64_t>(by_resource.size());
  std::mutex mu;
  auto problem = [&](int64_t CheckReport::*counter, const std::string& what) {
    std::lock_guard lock(mu);
    ++(report.*counter);
    if (report.problems.size() < 100) report.problems.push_back(what);
  };
  auto passed = [&] {
    std::lock_guard lock(mu);
    ++report.ok;
  };

  // Jobs: every recorded version (vread), then every resource's current version (read).
  std::vector<std::string> keys;
  for (const auto& [k, v] : by_resource) keys.push_back(k);
  const size_t jobs = records.size() + keys.size();
  report.versions = static_cast<int64_t>(records.size());
  std::atomic<size_t> next{0};
  auto worker = [&] {
    httplib::Client cli(url);
    cli.set_keep_alive(true);
    cli.set_connection_timeout(std::chrono::seconds(10));
    cli.set_read_timeout(std::chrono::seconds(60));
    for (size_t i; (i = next++) < jobs;) {
      if (i < records.size()) {
        const Record& r = records[i];
        std::string path = "/" + r.type + "/" + r.id + "/_history/" + r.v;
        std::string where = r.op + " " + r.type + "/" + r.id + " version " + r.v + " (ledger line " +
                            std::to_string(r.line) + ")";
        auto res = cli.Get(path.c_str());
        if (!res || res->status >= 500) {
          problem(&CheckReport::unreachable,
                  "UNCHECKED " + where + ": " + (res ? "HTTP " + std::to_string(res->status)
                                                     : httplib::to_string(res.error())));
        } else if (r.op == "delete") {
          if (res->status == 410) passed();
          else problem(&CheckReport::lost, "LOST " + where + ": the deletion reads as HTTP " +
                                                std::to_string(res->status));
        } else if (res->status != 200) {
          problem(&CheckReport::lost, "LOST " + where + ": HTTP " + std::to_string(res->status));
        } else if (version_of(res->body) != r.v || content_hash(res->body) != r.hash) {
          problem(&CheckReport::wrong, "WRONG " + where + ": reads back with other content");
        } else {
          passed();
        }
        continue;
      }
      const std::string& key = keys[i - records.size()];
      const Record& last = records[by_resource[key].back()];
      int64_t newest = -1;
      for (size_t idx : by_resource[key]) newest = std::max(newest, version_number(records[idx].v));
      auto res = cli.Get(("/" + key).c_str());
      if (!res || res->status >= 500) {
        problem(&CheckReport::unreachable, "UNCHECKED " + key + " (current version): " +
                                               (res ? "HTTP " + std::to_string(res->status)
                                                    : httplib::to_string(res.error())));
        continue;
      }
      std::string v = res->status == 200 ? version_of(res->body) : "";
      if (res->status == 410) {
        auto etag = res->get_header_value("ETag");
        auto a = etag.find('"'), b = etag.rfind('"');
        if (a != std::string::npos && b > a) v = etag.substr(a + 1, b - a - 1);
      }
      if (res->status == 404 || (res->status != 200 && res->status != 410)) {
        problem(&CheckReport::lost, "LOST " + key + ": reads as HTTP " + std::to_string(res->status));
      } else if (version_number(v) < newest) {
        problem(&CheckReport::lost, "LOST " + key + ": the current version is " + v +
                                        " but version " + std::to_string(newest) +
                                        " was acknowledged (ledger line " +
                                        std::to_string(last.line) + ")");
      } else if (last.op == "delete" && version_number(v) == newest && res->status != 410) {
        problem(&CheckReport::wrong, "WRONG " + key + ": deleted (version " + last.v +
                                         ") but reads as HTTP " + std::to_string(res->status));
      } else {
        passed();
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < std::max(1, concurrency); ++t) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  return report;
}

}  // namespace fhirshift::load
