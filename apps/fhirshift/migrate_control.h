// The migrator's runtime control on its --metrics-port: POST /pause, /resume and /throttle, kept
// apart from the read-only routes (/metrics, /progress) that cmd_migrate.cpp registers.
#pragma once

#include <httplib.h>

#include <nlohmann/json.hpp>

#include "migrate/throttle.h"

namespace fhirshift::cli {

// The throttle's state as the control routes answer it (and `fhirshift ctl` prints it).
nlohmann::json throttle_json(const migrate::Throttle::State& s);

void add_control_routes(httplib::Server& server, migrate::Throttle& throttle);

}  // namespace fhirshift::cli
