// `fhirshift load`: a FHIR write/read load against a server (usually through HAProxy) that records
// every write it got a 2xx for in a ledger, and `fhirshift load check`, which reads every recorded
// version back. Together they prove a migration and cut-over lost no acknowledged write.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace fhirshift::load {

// Weights of the four operations, "create:update:read:delete" (e.g. "30:20:45:5").
struct Mix {
  int create = 30, update = 20, read = 45, del = 5;
  // Throws std::invalid_argument naming the problem.
  static Mix parse(const std::string& text);
};

// "90s", "10m", "1h", "500ms", "2.5s", or a plain number of seconds. Throws std::invalid_argument.
std::chrono::milliseconds parse_duration(const std::string& text);

struct LoadOptions {
  std::string url;                      // base URL of the FHIR server
  double rate = 10;                     // requests per second, all operations together
  std::chrono::milliseconds duration{60000};  // 0: until stopped
  Mix mix;
  std::string ledger;                   // JSON lines, one per acknowledged write ("" = none)
  uint64_t seed = 1;
  int concurrency = 8;                  // requests in flight at most
  // A 503 with Retry-After is retried (after the advised delay) for at most this long.
  std::chrono::milliseconds retry_budget{60000};
  std::chrono::milliseconds timeout{90000};  // per request; above a proxy's 65 s server timeout
};

struct OpStats {
  int64_t ok = 0;
  int64_t failed = 0;
  int64_t retried = 0;  // 503 + Retry-After answers that were retried
  std::vector<double> latency_ms;  // successful requests, including their retries
};

struct LoadReport {
  std::map<std::string, OpStats> ops;  // "create", "update", "read", "delete"
  std::vector<std::string> failures;   // the first 50, "update Patient/x: HTTP 500 ..."
  double seconds = 0;
  int64_t total_ok() const;
  int64_t total_failed() const;
};

// Runs until `duration` passed or `stop` became true; requests in flight finish. Throws when the
// ledger cannot be written.
LoadReport run_load(const LoadOptions& options, const std::atomic<bool>& stop);

// Text for the operator: per operation count, failures, retries, p50/p90/p99/max latency.
std::string format_report(const LoadReport& report);

// The p-th percentile (0..100) of `values` (nearest rank); 0 when empty.
double percentile(std::vector<double> values, double p);

struct CheckReport {
  int64_t resources = 0;
  int64_t versions = 0;       // recorded versions read back
  int64_t ok = 0;
  int64_t lost = 0;           // a recorded version (or the resource) is missing
  int64_t wrong = 0;          // a recorded version reads back with other content
  int64_t unreachable = 0;    // could not ask (connection or server error)
  std::vector<std::string> problems;  // the first 100
  bool passed() const { return lost == 0 && wrong == 0 && unreachable == 0; }
};

// Reads every version recorded in `ledger` back from `url` (vread; deletions must read as 410),
// and checks the current version of each resource is not older than the newest recorded one.
CheckReport check_ledger(const std::string& ledger, const std::string& url, int concurrency = 8);

// The identity of a resource's content: XXH64 of its canonical JSON without `id` and `meta` (the
// server sets those). Hex; "" when `json` is not a JSON object.
std::string content_hash(const std::string& json);
// A FHIR version id as a number ("3" -> 3), or -1 when it is not a plain number.
int64_t version_number(const std::string& v);

}  // namespace fhirshift::load
