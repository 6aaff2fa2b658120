// Closed-loop HTTP driver for `fhirshift serve`: N connections each send the next request as soon as
// the previous one is answered, for a fixed time; prints requests/s and latency percentiles.
//   server_bench --url http://127.0.0.1:8080 --op read|create [--seconds 5] [--connections 4]
// `read` first creates --resources Patients (not measured) and reads them at random.
#include <httplib.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>
#include <unistd.h>
#include <vector>

#include "corpus/generator.h"

namespace {

using Clock = std::chrono::steady_clock;

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Closed-loop read/create benchmark of a FHIR server"};
  std::string url, op = "read", type = "Patient";
  double seconds = 5;
  int connections = 4, resources = 200;
  int cpu_pid = 0;
  app.add_option("--url", url)->required();
  app.add_option("--op", op)->check(CLI::IsMember({"read", "create"}));
  app.add_option("--type", type, "Resource type (a corpus type)");
  app.add_option("--seconds", seconds);
  app.add_option("--connections", connections);
  app.add_option("--resources", resources, "read: resources created first");
  app.add_option("--cpu-pid", cpu_pid, "Also report this process's CPU time per request (the server)");
  CLI11_PARSE(app, argc, argv);
  // utime + stime of a process, in seconds (Linux /proc).
  auto cpu_seconds = [&]() -> double {
    if (cpu_pid <= 0) return 0;
    std::FILE* f = std::fopen(("/proc/" + std::to_string(cpu_pid) + "/stat").c_str(), "r");
    if (!f) return 0;
    char buf[4096];
    size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    buf[n] = 0;
    std::string stat(buf);
    auto close = stat.rfind(')');  // the command name may hold spaces
    std::vector<std::string> fields;
    std::string field;
    for (size_t i = close + 2; i <= stat.size(); ++i) {
      if (i == stat.size() || stat[i] == ' ') {
        fields.push_back(field);
        field.clear();
      } else {
        field += stat[i];
      }
    }
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (std::stod(fields[11]) + std::stod(fields[12])) / static_cast<double>(sysconf(_SC_CLK_TCK));
  };

  std::vector<std::string> ids;
  if (op == "read") {
    httplib::Client c(url);
    fhirshift::corpus::Generator gen(42);
    for (int i = 0; i < resources; ++i) {
      auto r = c.Post(("/" + type).c_str(), gen.resource(type, "x"), "application/fhir+json");
      if (!r || r->status != 201) {
        std::fprintf(stderr, "setup: create failed: %s\n", r ? r->body.c_str() : "no answer");
        return 1;
      }
      ids.push_back(nlohmann::json::parse(r->body)["id"]);
    }
  }

  std::mutex mu;
  std::vector<double> latencies;
  std::atomic<int64_t> errors{0};
  const auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(seconds));
  std::vector<std::thread> threads;
  auto start = Clock::now();
  const double cpu_before = cpu_seconds();
  for (int t = 0; t < connections; ++t)
    threads.emplace_back([&, t] {
      httplib::Client c(url);
      c.set_keep_alive(true);
      fhirshift::corpus::Generator gen(1000 + t);
      std::mt19937_64 rng(t);
      std::vector<double> mine;
      while (Clock::now() < end) {
        std::string body;
        std::string path = "/" + type;
        if (op == "create") body = gen.resource(type, "x");
        else path += "/" + ids[rng() % ids.size()];
        auto t0 = Clock::now();
        auto r = op == "create" ? c.Post(path.c_str(), body, "application/fhir+json")
                                : c.Get(path.c_str());
        double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        if (r && r->status == (op == "create" ? 201 : 200)) mine.push_back(ms);
        else ++errors;
      }
      std::lock_guard lock(mu);
      latencies.insert(latencies.end(), mine.begin(), mine.end());
    });
  for (auto& t : threads) t.join();
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  const double cpu = cpu_seconds() - cpu_before;
  size_t n = latencies.size();
  std::printf("%-6s %-8s %6zu requests in %5.2f s = %8.1f req/s   p50 %7.2f ms   p99 %7.2f ms   errors %lld",
              op.c_str(), type.c_str(), n, elapsed, static_cast<double>(n) / elapsed,
              percentile(latencies, 50), percentile(latencies, 99),
              static_cast<long long>(errors.load()));
  if (cpu_pid > 0 && n > 0)
    std::printf("   server CPU %.2f ms/request (%.0f req/s per core)", cpu * 1000 / static_cast<double>(n),
                static_cast<double>(n) / std::max(cpu, 1e-9));
  std::printf("\n");
  return errors > 0 ? 1 : 0;
}
