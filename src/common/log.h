// Process-wide logging setup shared by every subcommand.
#pragma once

#include <chrono>
#include <string>

namespace fhirshift {

// Console logging on stderr: a human format on a terminal, one key=value line per event otherwise
// (what a log shipper wants). `verbose` lowers the level to debug.
void init_logging(bool verbose);

// True when stderr is a terminal (progress lines are then redrawn rather than logged).
bool stderr_is_terminal();

// "hh:mm:ss" for durations, the format operators know from the legacy tool's log lines
// ("Waiting for 00:00:05 before retrying...").
std::string format_hms(std::chrono::milliseconds d);

}  // namespace fhirshift
