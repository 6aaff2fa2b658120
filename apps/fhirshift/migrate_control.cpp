#include "migrate_control.h"

#include <spdlog/spdlog.h>

#include <stdexcept>

#include "migrate/options.h"

namespace fhirshift::cli {
namespace {

void answer(httplib::Response& res, const migrate::Throttle& throttle) {
  res.set_content(throttle_json(throttle.state()).dump(), "application/json");
}

void refuse(httplib::Response& res, const std::string& why) {
  res.status = 400;
  res.set_content(nlohmann::json{{"error", why}}.dump(), "application/json");
}

double parse_rate(const std::string& text) {
  size_t used = 0;
  double r = -1;
  try {
    r = std::stod(text, &used);
  } catch (const std::exception&) {
  }
  if (used != text.size() || !(r >= 0))
    throw std::invalid_argument("maxRate=" + text +
                                ": give source entries per second, a number >= 0 (0: no limit)");
  return r;
}

}  // namespace

nlohmann::json throttle_json(const migrate::Throttle::State& s) {
  return {{"paused", s.paused},
          {"pausedBy", s.paused ? nlohmann::json(s.paused_by) : nlohmann::json(nullptr)},
          {"maxRate", s.max_rate},
          {"maxSourceLatencyMs", s.max_source_latency_ms},
          {"rateLimit", s.rate_limit},
          {"sourceLatencyP90Ms",
           s.latency_p90_ms < 0 ? nlohmann::json(nullptr) : nlohmann::json(s.latency_p90_ms)},
          {"throttled", s.throttled},
          {"throttleReason", s.reason}};
}

void add_control_routes(httplib::Server& server, migrate::Throttle& throttle) {
  server.Post("/pause", [&](const httplib::Request& req, httplib::Response& res) {
    if (!throttle.paused())
      spdlog::info(
          "pause requested by {}: the chunk in flight finishes, then nothing is read until resumed",
          req.remote_addr);
    // ?by=cutover: a cut-over's pause for its final verify, which the next cut-over may end.
    const std::string by = req.get_param_value("by") == "cutover" ? "cutover" : "operator";
    throttle.pause(by);
    answer(res, throttle);
  });
  server.Post("/resume", [&](const httplib::Request& req, httplib::Response& res) {
    if (throttle.paused()) spdlog::info("resume requested by {}", req.remote_addr);
    throttle.resume();
    answer(res, throttle);
  });
  server.Post("/poll", [&](const httplib::Request&, httplib::Response& res) {
    throttle.request_poll();
    answer(res, throttle);
  });
  server.Post("/throttle", [&](const httplib::Request& req, httplib::Response& res) {
    if (!req.has_param("maxRate") && !req.has_param("maxSourceLatency"))
      return refuse(res,
                    "name a limit: POST /throttle?maxRate=N (source entries/s) and/or "
                    "?maxSourceLatency=D (200ms, 1s); 0 lifts it");
    try {
      // Both are parsed before either is applied: a typo changes nothing.
      std::optional<double> rate;
      std::optional<std::chrono::milliseconds> latency;
      if (req.has_param("maxRate")) rate = parse_rate(req.get_param_value("maxRate"));
      if (req.has_param("maxSourceLatency")) {
        const std::string text = req.get_param_value("maxSourceLatency");
        try {
          latency = migrate::parse_interval(text);
        } catch (const std::invalid_argument&) {
        }
        if (!latency || latency->count() < 0)
          throw std::invalid_argument("maxSourceLatency=" + text +
                                      ": give a duration such as 200ms or 1s (0: no limit)");
      }
      if (rate) {
        throttle.set_max_rate(*rate);
        spdlog::info("max rate set to {} by {}",
                     *rate > 0 ? fmt::format("{:g} entries/s", *rate) : "none", req.remote_addr);
      }
      if (latency) {
        throttle.set_max_source_latency(*latency);
        spdlog::info("max source latency set to {} by {}",
                     latency->count() > 0 ? fmt::format("{} ms", latency->count()) : "none",
                     req.remote_addr);
      }
    } catch (const std::invalid_argument& e) {
      return refuse(res, e.what());
    }
    answer(res, throttle);
  });
}

}  // namespace fhirshift::cli
