// `fhirshift ctl`: steers a running `fhirshift migrate` through its --metrics-port (pause, resume,
// change its limits, show its state), so that operators need no curl.
#include <fmt/format.h>

#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "commands.h"
#include "cutover/http_client.h"

namespace fhirshift::cli {
namespace {

struct CtlArgs {
  std::string metrics_url;
  std::string verb;
  std::string max_rate;
  std::string max_source_latency;
  double wait_seconds = 120;
  bool json = false;
};

// What the operator reads: where the migration stands and what holds it back.
std::string describe(const nlohmann::json& p) {
  auto num = [&](const char* key) { return p.value(key, nlohmann::json(0)).dump(); };
  std::string s = fmt::format(
      "{} migration, phase {}: {} entries read, {} written, lag {:.1f} s, {}\n",
      p.value("mode", "?"), p.value("phase", "?"), num("entriesRead"), num("entriesWritten"),
      p.value("lagSeconds", 0.0), p.value("caughtUp", false) ? "caught up" : "not caught up");
  double rate = p.value("maxRate", 0.0);
  int64_t latency = p.value("maxSourceLatencyMs", int64_t{0});
  s += fmt::format(
      "limits: max rate {}, max source latency {}{}\n",
      rate > 0 ? fmt::format("{:g} entries/s", rate) : "none",
      latency > 0 ? fmt::format("{} ms", latency) : "none",
      p.contains("sourceLatencyP90Ms") && !p["sourceLatencyP90Ms"].is_null()
          ? fmt::format(" (source p90 now {:.0f} ms)", p["sourceLatencyP90Ms"].get<double>())
          : "");
  if (p.value("paused", false)) s += "PAUSED\n";
  if (p.value("throttled", false))
    s += "throttled: " + p.value("throttleReason", std::string()) + "\n";
  return s;
}

int run_ctl(const CtlArgs& a) {
  auto fail = [](const std::string& why) {
    std::cerr << "fhirshift ctl: " << why << "\n";
    return kExitFailure;
  };
  std::unique_ptr<cutover::HttpClient> client;
  try {
    client = std::make_unique<cutover::HttpClient>(a.metrics_url, std::chrono::seconds(10));
  } catch (const std::invalid_argument& e) {
    std::cerr << "fhirshift ctl: --metrics " << a.metrics_url << ": " << e.what()
              << " (the migrator's --metrics-port, e.g. http://127.0.0.1:9100)\n";
    return kExitUsage;
  }
  // Every answer must be the migrator's JSON: a 404 means another service (or an older fhirshift)
  // listens there.
  auto call = [&](bool post, const std::string& path) {
    cutover::HttpResponse r = post ? client->post(path) : client->get(path);
    nlohmann::json body = nlohmann::json::parse(r.body, nullptr, false);
    if (r.status == 400 && body.is_object() && body.contains("error"))
      throw std::invalid_argument(body["error"].get<std::string>());
    if (r.status != 200 || !body.is_object())
      throw cutover::HttpError(
          fmt::format("{} {}{} answered HTTP {}: is this the --metrics-port of a running "
                      "`fhirshift migrate` (this version)?",
                      post ? "POST" : "GET", client->base_url(), path, r.status));
    return body;
  };
  try {
    if (a.verb == "status") {
      nlohmann::json p = call(false, "/progress");
      std::cout << (a.json ? p.dump(2) + "\n" : describe(p));
      return kExitOk;
    }
    if (a.verb == "resume") {
      call(true, "/resume");
      std::cout << "resumed\n" << describe(call(false, "/progress"));
      return kExitOk;
    }
    if (a.verb == "throttle") {
      std::string query;
      if (!a.max_rate.empty()) query += "maxRate=" + cutover::url_encode(a.max_rate);
      if (!a.max_source_latency.empty())
        query += (query.empty() ? "" : "&") + std::string("maxSourceLatency=") +
                 cutover::url_encode(a.max_source_latency);
      if (query.empty()) {
        std::cerr << "fhirshift ctl throttle: give --max-rate N and/or --max-source-latency D (0 "
                     "lifts a limit)\n";
        return kExitUsage;
      }
      call(true, "/throttle?" + query);
      std::cout << describe(call(false, "/progress"));
      return kExitOk;
    }
    // pause: returns once the migrator has stopped applying (the chunk in flight written, its
    // journal commit saved), so that the operator knows the source is left alone.
    call(true, "/pause");
    auto deadline =
        std::chrono::steady_clock::now() + std::chrono::duration<double>(a.wait_seconds);
    for (;;) {
      nlohmann::json p = call(false, "/progress");
      std::string phase = p.value("phase", "");
      if (phase == "paused") {
        std::cout << "paused at checkpoint " << p.value("checkpointId", std::string("(start)"))
                  << "\n"
                  << describe(p) << "resume with: fhirshift ctl --metrics " << a.metrics_url
                  << " resume\n";
        return kExitOk;
      }
      if (phase == "done" || phase == "stopped")
        return fail("the migration is " + phase + ": there is nothing to pause");
      if (std::chrono::steady_clock::now() > deadline)
        return fail(fmt::format(
            "pause requested, but the chunk in flight was not done within {:g} s (phase {}); "
            "it stays paused once it is: check with `fhirshift ctl --metrics {} status`",
            a.wait_seconds, phase, a.metrics_url));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  } catch (const std::invalid_argument& e) {
    std::cerr << "fhirshift ctl: the migrator refused: " << e.what() << "\n";
    return kExitUsage;
  } catch (const cutover::HttpError& e) {
    return fail(
        std::string(e.what()) +
        "\n  Is the migrator running with --metrics-port on that host and port? It listens on "
        "127.0.0.1 unless started with --metrics-bind.");
  }
}

}  // namespace

void add_ctl(CLI::App& app, Action& action) {
  auto a = std::make_shared<CtlArgs>();
  auto* sub = app.add_subcommand(
      "ctl",
      "Steer a running `fhirshift migrate` through its --metrics-port: pause (the chunk in flight "
      "finishes, the journal is saved, nothing is read until resume), resume, throttle (change "
      "--max-rate / --max-source-latency live), status. See docs/runbook.md.");
  sub->add_option("--metrics", a->metrics_url,
                  "The migrator's metrics base URL, http://host:port (its --metrics-port)")
      ->required();
  sub->add_flag("--json", a->json, "status: print the /progress document as it is");
  sub->require_subcommand(1);
  auto verb = [&action, a](const std::string& name) {
    return [&action, a, name] {
      a->verb = name;
      action = [a] { return run_ctl(*a); };
    };
  };
  // `ctl pause --metrics URL` reads as well as `ctl --metrics URL pause`.
  auto verb_command = [sub](const std::string& name, const std::string& help) {
    return sub->add_subcommand(name, help)->fallthrough();
  };
  auto* pause = verb_command(
      "pause", "Pause reading and writing; waits until the chunk in flight is applied");
  pause->add_option("--wait", a->wait_seconds, "Seconds to wait for the chunk in flight")
      ->capture_default_str();
  pause->callback(verb("pause"));
  verb_command("resume", "Resume a paused migration where it stopped")->callback(verb("resume"));
  verb_command("status", "Where the migration stands, its limits and what throttles it")
      ->callback(verb("status"));
  auto* throttle = verb_command("throttle", "Change the limits while it runs (0 lifts one)");
  throttle->add_option("--max-rate", a->max_rate, "Source entries/s");
  throttle->add_option("--max-source-latency", a->max_source_latency,
                       "e.g. 200ms: slow down while the source's p90 is above");
  throttle->callback(verb("throttle"));
}

}  // namespace fhirshift::cli
