#include "mongo/client.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "mongo/command_log.h"
#include "mongo/error.h"

namespace fhirshift::mongo {

namespace {
// The driver's own log goes through spdlog. Its warnings are demoted to debug: they are about
// things fhirshift already reports as errors with context, or harmless (servers without
// `endSessions`, such as FerretDB, make it warn at every client shutdown).
void route_driver_log(mongoc_log_level_t level, const char* domain, const char* message, void*) {
  switch (level) {
    case MONGOC_LOG_LEVEL_ERROR:
    case MONGOC_LOG_LEVEL_CRITICAL:
      spdlog::error("mongoc {}: {}", domain, message);
      break;
    case MONGOC_LOG_LEVEL_WARNING:
    case MONGOC_LOG_LEVEL_MESSAGE:
    case MONGOC_LOG_LEVEL_INFO:
      spdlog::debug("mongoc {}: {}", domain, message);
      break;
    default:
      break;
  }
}
}  // namespace

void ensure_driver_initialized() {
  static std::once_flag once;
  std::call_once(once, [] {
    mongoc_log_set_handler(route_driver_log, nullptr);
    mongoc_init();
    std::atexit(mongoc_cleanup);
  });
}

Uri Uri::parse(const std::string& connection_string) {
  ensure_driver_initialized();
  bson_error_t error;
  mongoc_uri_t* raw = mongoc_uri_new_with_error(connection_string.c_str(), &error);
  if (!raw) {
    throw std::invalid_argument("invalid MongoDB connection string: " + std::string(error.message) +
                                " (expected e.g. mongodb://host:27017/vonkdata)");
  }
  Uri uri;
  uri.uri_.reset(raw);
  uri.text_ = connection_string;
  const char* db = mongoc_uri_get_database(raw);
  uri.database_ = db && *db ? db : "vonkdata";
  for (const mongoc_host_list_t* h = mongoc_uri_get_hosts(raw); h; h = h->next) {
    if (!uri.hosts_.empty()) uri.hosts_ += ",";
    uri.hosts_ += h->host_and_port;
  }
  if (uri.hosts_.empty()) {
    if (const char* srv = mongoc_uri_get_srv_hostname(raw)) uri.hosts_ = std::string("srv:") + srv;
  }
  // Without an explicit choice, fail fast (10 s) rather than the driver's 30 s when a host is down.
  if (!mongoc_uri_has_option(raw, MONGOC_URI_SERVERSELECTIONTIMEOUTMS)) {
    mongoc_uri_set_option_as_int32(raw, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 10000);
  }
  // Durability by default (docs/schema.md, "Durability"): a write is acknowledged once a majority
  // of the replica set has it in its journal, and reads see only majority-committed data, so that
  // nothing a failover rolls back is copied, checkpointed or acknowledged to a FHIR client. A
  // connection string that names its own `w`/`journal` or `readConcernLevel` keeps them.
  const mongoc_write_concern_t* given = mongoc_uri_get_write_concern(raw);
  if (mongoc_write_concern_get_w(given) == MONGOC_WRITE_CONCERN_W_DEFAULT &&
      !mongoc_write_concern_journal_is_set(given)) {
    mongoc_write_concern_t* wc = mongoc_write_concern_copy(given);
    const int64_t wtimeout = mongoc_write_concern_get_wtimeout_int64(wc);
    mongoc_write_concern_set_wmajority(wc, 0);
    mongoc_write_concern_set_wtimeout_int64(wc, wtimeout);
    mongoc_write_concern_set_journal(wc, true);
    mongoc_uri_set_write_concern(raw, wc);
    mongoc_write_concern_destroy(wc);
  }
  if (!mongoc_read_concern_get_level(mongoc_uri_get_read_concern(raw))) {
    mongoc_read_concern_t* rc = mongoc_read_concern_new();
    mongoc_read_concern_set_level(rc, MONGOC_READ_CONCERN_LEVEL_MAJORITY);
    mongoc_uri_set_read_concern(raw, rc);
    mongoc_read_concern_destroy(rc);
  }
  return uri;
}

std::string Uri::write_concern_json() const {
  const mongoc_write_concern_t* wc = mongoc_uri_get_write_concern(uri_.get());
  std::string w;
  int32_t n = mongoc_write_concern_get_w(wc);
  if (mongoc_write_concern_get_wmajority(wc))
    w = "\"majority\"";
  else if (const char* tag = mongoc_write_concern_get_wtag(wc))
    w = "\"" + std::string(tag) + "\"";
  else if (n == MONGOC_WRITE_CONCERN_W_DEFAULT)
    w = "\"default\"";
  else
    w = std::to_string(n);
  std::string out = "{\"w\": " + w;
  if (mongoc_write_concern_journal_is_set(wc))
    out += std::string(", \"j\": ") + (mongoc_write_concern_get_journal(wc) ? "true" : "false");
  if (int64_t t = mongoc_write_concern_get_wtimeout_int64(wc); t > 0) out += ", \"wtimeout\": " + std::to_string(t);
  return out + "}";
}

std::string Uri::read_concern_level() const {
  const char* level = mongoc_read_concern_get_level(mongoc_uri_get_read_concern(uri_.get()));
  return level ? level : "";
}

bool Uri::retry_writes() const {
  return mongoc_uri_get_option_as_bool(uri_.get(), MONGOC_URI_RETRYWRITES, true);
}

std::string Uri::redacted() const {
  const char* password = mongoc_uri_get_password(uri_.get());
  if (!password || !*password) return text_;
  std::string out = text_;
  auto at = out.find('@');
  auto scheme_end = out.find("://");
  if (at == std::string::npos || scheme_end == std::string::npos) return out;
  auto colon = out.find(':', scheme_end + 3);
  if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "****");
  return out;
}

void Uri::cap_server_selection_timeout(std::chrono::milliseconds cap) {
  const int32_t limit = static_cast<int32_t>(std::clamp<int64_t>(cap.count(), 100, INT32_MAX));
  if (mongoc_uri_get_option_as_int32(uri_.get(), MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 30000) > limit)
    mongoc_uri_set_option_as_int32(uri_.get(), MONGOC_URI_SERVERSELECTIONTIMEOUTMS, limit);
}

void wait_until_reachable(const Uri& uri, std::chrono::steady_clock::time_point deadline) {
  using namespace std::chrono;
  ensure_driver_initialized();
  bson_error_t last{};
  bson_set_error(&last, MONGOC_ERROR_SERVER_SELECTION, MONGOC_ERROR_SERVER_SELECTION_FAILURE,
                 "no time left to try");
  for (;;) {
    auto left = duration_cast<milliseconds>(deadline - steady_clock::now()).count();
    if (left <= 0) break;
    const int32_t budget = static_cast<int32_t>(std::clamp<int64_t>(left, 1, INT32_MAX));
    // A single-threaded client tries each host once (serverSelectionTryOnce), so one try ends
    // within the connect timeout, capped here like the others by the time left.
    std::unique_ptr<mongoc_uri_t, void (*)(mongoc_uri_t*)> probe(mongoc_uri_copy(uri.get()), mongoc_uri_destroy);
    mongoc_uri_set_option_as_int32(probe.get(), MONGOC_URI_SERVERSELECTIONTIMEOUTMS, budget);
    mongoc_uri_set_option_as_int32(
        probe.get(), MONGOC_URI_CONNECTTIMEOUTMS,
        std::min(budget, mongoc_uri_get_option_as_int32(probe.get(), MONGOC_URI_CONNECTTIMEOUTMS, 10000)));
    mongoc_uri_set_option_as_int32(probe.get(), MONGOC_URI_SOCKETTIMEOUTMS, budget);
    mongoc_uri_set_option_as_bool(probe.get(), MONGOC_URI_SERVERSELECTIONTRYONCE, true);
    std::unique_ptr<mongoc_client_t, void (*)(mongoc_client_t*)> client(
        mongoc_client_new_from_uri_with_error(probe.get(), &last), mongoc_client_destroy);
    if (!client) break;  // the URI itself is refused: no later try does better
    mongoc_client_set_error_api(client.get(), MONGOC_ERROR_API_VERSION_2);
    bson_t* ping = BCON_NEW("ping", BCON_INT32(1));
    bool ok = mongoc_client_command_simple(client.get(), "admin", ping, nullptr, nullptr, &last);
    bson_destroy(ping);
    if (ok) return;
    auto pause = std::min<int64_t>(250, duration_cast<milliseconds>(deadline - steady_clock::now()).count());
    if (pause > 0) std::this_thread::sleep_for(milliseconds(pause));
  }
  throw MongoError("cannot reach MongoDB at " + uri.hosts(), last);
}

Uri::Uri(const Uri& other)
    : uri_(mongoc_uri_copy(other.uri_.get())),
      text_(other.text_),
      database_(other.database_),
      hosts_(other.hosts_) {}

Uri& Uri::operator=(const Uri& other) {
  if (this != &other) *this = Uri(other);
  return *this;
}

ClientPool::ClientPool(const Uri& uri, const std::string& app_name) : uri_(uri), pool_(nullptr) {
  bson_error_t error;
  pool_ = mongoc_client_pool_new_with_error(uri_.get(), &error);
  if (!pool_) throw MongoError("cannot create a client pool for " + uri_.hosts(), error);
  mongoc_client_pool_set_error_api(pool_, MONGOC_ERROR_API_VERSION_2);
  mongoc_client_pool_set_appname(pool_, app_name.c_str());
  // A `cur` flip on a sharded cluster must be a retryable write (docs/schema.md, "Shard key").
  if (!uri_.retry_writes())
    spdlog::warn("the connection string to {} sets retryWrites=false: on a sharded cluster the "
                 "updates that flip `cur` (a shard-key field) then fail; remove it (true is the "
                 "default)",
                 uri_.hosts());
  // Before any client is popped: the driver takes APM callbacks only then.
  CommandLog::attach_from_environment(pool_, app_name, uri_);
}

ClientPool::~ClientPool() { mongoc_client_pool_destroy(pool_); }

Client ClientPool::acquire() { return Client(this, mongoc_client_pool_pop(pool_)); }

Client::Client(Client&& other) noexcept : pool_(other.pool_), client_(other.client_) {
  other.client_ = nullptr;
}

Client::~Client() {
  if (client_) mongoc_client_pool_push(pool_->pool_, client_);
}

Collection Client::collection(const std::string& database, const std::string& name) {
  return Collection(mongoc_client_get_collection(client_, database.c_str(), name.c_str()),
                    database + "." + name);
}

Bson Client::command(const std::string& database, const Bson& command) {
  bson_t reply;
  bson_error_t error;
  bool ok = mongoc_client_command_simple(client_, database.c_str(), command.get(), nullptr, &reply,
                                         &error);
  Bson result = Bson::copy_of(&reply);
  bson_destroy(&reply);
  if (!ok) {
    bson_iter_t it;
    std::string name = bson_iter_init(&it, command.get()) && bson_iter_next(&it) ? bson_iter_key(&it) : "?";
    throw MongoError("command '" + name + "' on " + pool_->uri().hosts() + "/" + database, error);
  }
  return result;
}

void Client::ping() {
  Builder cmd;
  cmd.append("ping", int32_t{1});
  try {
    command("admin", cmd.extract());
  } catch (const MongoError& e) {
    throw MongoError("cannot reach MongoDB at " + pool_->uri().hosts() +
                         " (check the host, port and credentials in the connection string)",
                     e.domain(), e.code(), e.server_message());
  }
}

bool is_ferretdb(Client& client) {
  try {
    Builder cmd;
    cmd.append("buildInfo", int32_t{1});
    Bson info = client.command("admin", cmd.extract());
    return View(info.get()).has("ferretdbVersion");
  } catch (const std::exception& e) {
    spdlog::debug("buildInfo failed ({}): assuming MongoDB", e.what());
    return false;
  }
}

Topology describe_topology(Client& client) {
  Builder cmd;
  cmd.append("hello", int32_t{1});
  Bson reply = client.command("admin", cmd.extract());
  View v(reply.get());
  Topology t;
  t.is_mongos = v.string("msg").value_or("") == "isdbgrid";
  t.is_replica_set = v.has("setName");
  t.max_wire_version = static_cast<int>(v.integer("maxWireVersion").value_or(0));
  return t;
}

}  // namespace fhirshift::mongo
