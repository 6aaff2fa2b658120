// The operator's pages, each one self-contained HTML file (its CSS and JS inline, nothing fetched
// but the JSON it polls), embedded at build time from src/dashboard/*.html.
#pragma once

#include <string_view>

namespace fhirshift::dashboard {

// The migrator's page (GET / on --metrics-port): polls /progress and /progress/history.
std::string_view migrate_page();
// The cut-over's page (GET / on --report-port): polls /report.json.
std::string_view cutover_page();

}  // namespace fhirshift::dashboard
