#include "load/load.h"

#include <httplib.h>
#include <spdlog/spdlog.h>
#include <xxhash.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "common/iso8601.h"
#include "corpus/generator.h"

namespace fhirshift::load {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kFhirJson = "application/fhir+json";

std::string instant_now() {
  return format_iso8601(std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count());
}

// The version in an ETag (W/"3" -> 3), or "".
std::string etag_version(const std::string& etag) {
  auto a = etag.find('"'), b = etag.rfind('"');
  if (a == std::string::npos || b <= a) return etag;
  return etag.substr(a + 1, b - a - 1);
}

}  // namespace

int64_t version_number(const std::string& v) {
  try {
    size_t pos = 0;
    long long n = std::stoll(v, &pos);
    return pos == v.size() ? n : -1;
  } catch (const std::exception&) {
    return -1;
  }
}

namespace {

std::string describe(const httplib::Result& r) {
  if (!r) return httplib::to_string(r.error());
  std::string body = r->body.substr(0, 300);
  for (char& c : body)
    if (c == '\n') c = ' ';
  return "HTTP " + std::to_string(r->status) + " " + body;
}

struct Live {
  std::string type, id, v, hash;
};

// Resources this load created and that are not deleted. A resource is leased to one request at a
// time, so the load never races itself on one resource and knows each resource's latest version.
class LivePool {
 public:
  std::optional<Live> lease(std::mt19937_64& rng) {
    std::lock_guard lock(mu_);
    if (live_.empty()) return std::nullopt;
    size_t i = rng() % live_.size();
    std::swap(live_[i], live_.back());
    Live out = std::move(live_.back());
    live_.pop_back();
    return out;
  }
  void put(Live l) {
    std::lock_guard lock(mu_);
    live_.push_back(std::move(l));
  }

 private:
  std::mutex mu_;
  std::vector<Live> live_;
};

class Ledger {
 public:
  explicit Ledger(const std::string& path) {
    if (path.empty()) return;
    out_.open(path, std::ios::app);
    if (!out_) throw std::runtime_error("cannot open the ledger " + path + " for writing");
  }
  void record(const std::string& op, const Live& l, int status) {
    if (!out_.is_open()) return;
    json j{{"op", op}, {"type", l.type}, {"id", l.id}, {"v", l.v}, {"status", status},
           {"at", instant_now()}};
    if (op != "delete") j["hash"] = l.hash;
    std::lock_guard lock(mu_);
    out_ << j.dump() << '\n';
    out_.flush();  // a killed load leaves every acknowledged write recorded
  }

 private:
  std::mutex mu_;
  std::ofstream out_;
};

class Runner {
 public:
  Runner(const LoadOptions& o, const std::atomic<bool>& stop)
      : o_(o), stop_(stop), ledger_(o.ledger) {
    for (const char* op : {"create", "update", "read", "delete"}) report_.ops[op];
  }

  LoadReport run() {
    start_ = Clock::now();
    std::vector<std::thread> threads;
    for (int w = 0; w < std::max(1, o_.concurrency); ++w)
      threads.emplace_back([this, w] { worker(w); });
    for (auto& t : threads) t.join();
    report_.seconds = std::chrono::duration<double>(Clock::now() - start_).count();
    return std::move(report_);
  }

 private:
  void worker(int w) {
    httplib::Client cli(o_.url);
    cli.set_keep_alive(true);
    cli.set_connection_timeout(std::chrono::seconds(10));
    cli.set_read_timeout(o_.timeout);
    cli.set_write_timeout(o_.timeout);
    corpus::Generator gen(o_.seed * 1000003 + static_cast<uint64_t>(w));
    std::mt19937_64 rng(o_.seed * 7919 + static_cast<uint64_t>(w));
    const int total_weight = o_.mix.create + o_.mix.update + o_.mix.read + o_.mix.del;
    while (!stop_) {
      int64_t ticket = next_ticket_++;
      auto due = start_ + std::chrono::duration_cast<Clock::duration>(
                              std::chrono::duration<double>(static_cast<double>(ticket) / o_.rate));
      if (o_.duration.count() > 0 && due >= start_ + o_.duration) break;
      while (!stop_ && Clock::now() < due)
        std::this_thread::sleep_for(std::min<Clock::duration>(due - Clock::now(),
                                                              std::chrono::milliseconds(50)));
      if (stop_) break;
      int pick = static_cast<int>(rng() % static_cast<uint64_t>(total_weight));
      if (pick < o_.mix.create) {
        create(cli, gen);
        continue;
      }
      pick -= o_.mix.create;
      auto leased = pool_.lease(rng);
      if (!leased) {
        create(cli, gen);  // nothing to update, read or delete yet
        continue;
      }
      if (pick < o_.mix.update) update(cli, gen, std::move(*leased));
      else if (pick < o_.mix.update + o_.mix.read) read(cli, std::move(*leased));
      else remove(cli, std::move(*leased));
    }
  }

  // Sends with retries while the server answers 503 + Retry-After (a cut-over's write pause).
  template <class Send>
  httplib::Result send(OpStats& st, Send&& fn) {
    auto give_up = Clock::now() + o_.retry_budget;
    while (true) {
      httplib::Result r = fn();
      if (!r || r->status != 503 || !r->has_header("Retry-After") || Clock::now() >= give_up)
        return r;
      {
        std::lock_guard lock(mu_);
        ++st.retried;
      }
      double secs = 1;
      try {
        secs = std::clamp(std::stod(r->get_header_value("Retry-After")), 0.05, 5.0);
      } catch (const std::exception&) {
      }
      std::this_thread::sleep_for(std::chrono::duration<double>(secs));
    }
  }

  void done(const std::string& op, Clock::time_point started, bool ok, const std::string& what) {
    double ms = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
    std::lock_guard lock(mu_);
    OpStats& st = report_.ops[op];
    if (ok) {
      ++st.ok;
      st.latency_ms.push_back(ms);
    } else {
      ++st.failed;
      if (report_.failures.size() < 50) report_.failures.push_back(op + " " + what);
      spdlog::warn("load: {} {}", op, what);
    }
  }

  void create(httplib::Client& cli, corpus::Generator& gen) {
    std::string type(gen.random_type());
    std::string body = gen.resource(type, "load");
    auto started = Clock::now();
    auto r = send(report_.ops["create"], [&] { return cli.Post(("/" + type).c_str(), body, kFhirJson); });
    if (!r || r->status != 201) return done("create", started, false, type + ": " + describe(r));
    json j = json::parse(r->body, nullptr, false);
    Live l{type, j.is_object() ? j.value("id", "") : "", etag_version(r->get_header_value("ETag")),
           content_hash(body)};
    if (l.id.empty() || l.v.empty())
      return done("create", started, false, type + ": 201 without id or ETag: " + describe(r));
    ledger_.record("create", l, r->status);
    done("create", started, true, "");
    pool_.put(std::move(l));
  }

  void update(httplib::Client& cli, corpus::Generator& gen, Live l) {
    std::string body = gen.resource(l.type, l.id);
    std::string path = "/" + l.type + "/" + l.id;
    auto started = Clock::now();
    auto r = send(report_.ops["update"], [&] { return cli.Put(path.c_str(), body, kFhirJson); });
    if (!r || (r->status != 200 && r->status != 201)) {
      done("update", started, false, path + ": " + describe(r));
      return pool_.put(std::move(l));  // its state is unknown; reads tolerate a newer version
    }
    l.v = etag_version(r->get_header_value("ETag"));
    l.hash = content_hash(body);
    ledger_.record("update", l, r->status);
    done("update", started, true, "");
    pool_.put(std::move(l));
  }

  void read(httplib::Client& cli, Live l) {
    std::string path = "/" + l.type + "/" + l.id;
    auto started = Clock::now();
    auto r = send(report_.ops["read"], [&] { return cli.Get(path.c_str()); });
    std::string problem;
    if (!r || r->status != 200) {
      problem = path + ": " + describe(r);
    } else {
      json j = json::parse(r->body, nullptr, false);
      std::string v = j.is_object() && j.contains("meta") ? j["meta"].value("versionId", "") : "";
      int64_t have = version_number(v), want = version_number(l.v);
      if (have < want) {
        problem = path + ": reads version " + v + " but version " + l.v + " was acknowledged";
      } else if (v == l.v && content_hash(r->body) != l.hash) {
        problem = path + " version " + v + ": the content differs from what was written";
      } else if (v != l.v) {
        l.v = v;  // an earlier write whose answer was lost did land
        l.hash = content_hash(r->body);
      }
    }
    done("read", started, problem.empty(), problem);
    pool_.put(std::move(l));
  }

  void remove(httplib::Client& cli, Live l) {
    std::string path = "/" + l.type + "/" + l.id;
    auto started = Clock::now();
    auto r = send(report_.ops["delete"], [&] { return cli.Delete(path.c_str()); });
    if (!r || r->status != 200) {
      done("delete", started, false, path + ": " + describe(r));
      return pool_.put(std::move(l));
    }
    std::string v = etag_version(r->get_header_value("ETag"));
    if (v.empty()) return done("delete", started, false, path + ": nothing was deleted (no ETag)");
    l.v = v;
    ledger_.record("delete", l, r->status);
    done("delete", started, true, "");
  }

  const LoadOptions& o_;
  const std::atomic<bool>& stop_;
  Ledger ledger_;
  LivePool pool_;
  std::mutex mu_;
  LoadReport report_;
  Clock::time_point start_;
  std::atomic<int64_t> next_ticket_{0};
};

}  // namespace

Mix Mix::parse(const std::string& text) {
  Mix m;
  int* parts[] = {&m.create, &m.update, &m.read, &m.del};
  std::stringstream in(text);
  std::string item;
  int n = 0;
  while (std::getline(in, item, ':')) {
    if (n >= 4) throw std::invalid_argument("--mix has more than 4 parts: " + text);
    try {
      size_t pos = 0;
      *parts[n] = std::stoi(item, &pos);
      if (pos != item.size() || *parts[n] < 0) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      throw std::invalid_argument("--mix " + text + ": \"" + item + "\" is not a non-negative integer");
    }
    ++n;
  }
  if (n != 4) throw std::invalid_argument("--mix expects create:update:read:delete, e.g. 30:20:45:5");
  if (m.create + m.update + m.read + m.del == 0)
    throw std::invalid_argument("--mix " + text + ": all weights are 0");
  return m;
}

std::chrono::milliseconds parse_duration(const std::string& text) {
  size_t pos = 0;
  double value = 0;
  try {
    value = std::stod(text, &pos);
  } catch (const std::exception&) {
    throw std::invalid_argument("\"" + text + "\" is not a duration (90s, 10m, 1h, 500ms)");
  }
  std::string unit = text.substr(pos);
  double ms = unit == "ms" ? value
              : unit == "s" || unit.empty() ? value * 1000
              : unit == "m" ? value * 60000
              : unit == "h" ? value * 3600000
                            : -1;
  if (ms < 0 || value < 0)
    throw std::invalid_argument("\"" + text + "\" is not a duration (90s, 10m, 1h, 500ms)");
  return std::chrono::milliseconds(static_cast<int64_t>(std::llround(ms)));
}

std::string content_hash(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return "";
  j.erase("id");
  j.erase("meta");
  std::string canonical = j.dump();
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016llx",
                static_cast<unsigned long long>(XXH64(canonical.data(), canonical.size(), 0)));
  return buf;
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(values.size())));
  return values[std::clamp<size_t>(rank, 1, values.size()) - 1];
}

int64_t LoadReport::total_ok() const {
  int64_t n = 0;
  for (const auto& [op, st] : ops) n += st.ok;
  return n;
}

int64_t LoadReport::total_failed() const {
  int64_t n = 0;
  for (const auto& [op, st] : ops) n += st.failed;
  return n;
}

LoadReport run_load(const LoadOptions& options, const std::atomic<bool>& stop) {
  if (options.rate <= 0) throw std::invalid_argument("--rate must be above 0");
  Runner runner(options, stop);
  return runner.run();
}

std::string format_report(const LoadReport& r) {
  std::ostringstream o;
  int64_t retried = 0;
  for (const auto& [op, st] : r.ops) retried += st.retried;
  char line[256];
  std::snprintf(line, sizeof line, "load: %lld requests in %.1f s (%.1f/s), %lld failed, %lld retried after 503 Retry-After\n",
                static_cast<long long>(r.total_ok() + r.total_failed()), r.seconds,
                r.seconds > 0 ? static_cast<double>(r.total_ok() + r.total_failed()) / r.seconds : 0.0,
                static_cast<long long>(r.total_failed()), static_cast<long long>(retried));
  o << line;
  for (const char* op : {"create", "update", "read", "delete"}) {
    auto it = r.ops.find(op);
    if (it == r.ops.end()) continue;
    const OpStats& st = it->second;
    std::snprintf(line, sizeof line,
                  "  %-7s ok %-7lld failed %-5lld retried %-5lld p50 %7.1f ms  p90 %7.1f ms  p99 %7.1f ms  max %7.1f ms\n",
                  op, static_cast<long long>(st.ok), static_cast<long long>(st.failed),
                  static_cast<long long>(st.retried), percentile(st.latency_ms, 50),
                  percentile(st.latency_ms, 90), percentile(st.latency_ms, 99),
                  percentile(st.latency_ms, 100));
    o << line;
  }
  for (const auto& f : r.failures) o << "  FAILED " << f << "\n";
  return o.str();
}

}  // namespace fhirshift::load
