#include "common/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>

namespace fhirshift {

bool stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

void init_logging(bool verbose) {
  auto logger = spdlog::stderr_color_mt("fhirshift");
  if (stderr_is_terminal()) {
    logger->set_pattern("%H:%M:%S %^%-5l%$ %v");
  } else {
    logger->set_pattern("ts=%Y-%m-%dT%H:%M:%S.%eZ level=%l msg=\"%v\"", spdlog::pattern_time_type::utc);
  }
  logger->set_level(verbose ? spdlog::level::debug : spdlog::level::info);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

std::string format_hms(std::chrono::milliseconds d) {
  long long total = std::chrono::duration_cast<std::chrono::seconds>(d).count();
  char buf[32];
  std::snprintf(buf, sizeof buf, "%02lld:%02lld:%02lld", total / 3600, (total / 60) % 60, total % 60);
  return buf;
}

}  // namespace fhirshift
