// The routes the migrator's metrics server gains for its dashboard; the server itself (and its
// /metrics and /progress) is set up by `fhirshift migrate`.
#pragma once

namespace httplib {
class Server;
}

namespace fhirshift::dashboard {

class ProgressHistory;

// GET / (the page) and GET /progress/history[?since=<unix ms>] (the samples, oldest first).
void add_migrate_routes(httplib::Server& server, const ProgressHistory& history);

}  // namespace fhirshift::dashboard
