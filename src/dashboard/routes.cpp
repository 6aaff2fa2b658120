#include "dashboard/routes.h"

#include <httplib.h>

#include <string>

#include "dashboard/history.h"
#include "dashboard/pages.h"

namespace fhirshift::dashboard {

void add_migrate_routes(httplib::Server& server, const ProgressHistory& history) {
  // Both answers close the connection (the page asks for the history last): a browser tab left open
  // must not keep one of the server's worker threads in keep-alive, since the cut-over reads
  // /progress from the same server while writes are held.
  server.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_header("Cache-Control", "no-store");
    res.set_header("Connection", "close");
    res.set_content(std::string(migrate_page()), "text/html; charset=utf-8");
  });
  server.Get("/progress/history", [&history](const httplib::Request& req, httplib::Response& res) {
    int64_t since = 0;
    if (req.has_param("since")) {
      try {
        since = std::stoll(req.get_param_value("since"));
      } catch (const std::exception&) {
        res.status = 400;
        res.set_content("since must be a Unix time in milliseconds, e.g. ?since=1764770000000\n",
                        "text/plain");
        return;
      }
    }
    res.set_header("Cache-Control", "no-store");
    res.set_header("Connection", "close");
    res.set_content(history.to_json(since), "application/json");
  });
}

}  // namespace fhirshift::dashboard
