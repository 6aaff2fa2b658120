#include "server/server.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <map>
#include <nlohmann/json.hpp>

#include "common/version.h"
#include "mongo/error.h"
#include "server/body.h"
#include "server/fhir.h"
#include "server/resource_types.h"
#include "server/search.h"

namespace fhirshift::server {
namespace {

using httplib::Request;
using httplib::Response;
using nlohmann::json;

constexpr const char* kForwardedHeader = "X-Fhirshift-Forwarded-By";
constexpr int64_t kDefaultHistoryCount = 100;

void outcome(Response& res, int status, std::string_view code, std::string_view message,
             std::string_view severity = "error") {
  res.status = status;
  res.set_content(operation_outcome(severity, code, message), kFhirJson);
}

void unavailable(Response& res, std::string_view message) {
  outcome(res, 503, "transient", message);
  res.set_header("Retry-After", "1");
}

// The base URL clients see: through a proxy (X-Forwarded-Host/-Proto, also set by a forwarding
// fhirshift server) or directly (Host).
std::string base_url(const Request& req) {
  std::string host = req.get_header_value("X-Forwarded-Host");
  if (host.empty()) host = req.get_header_value("Host");
  if (host.empty()) host = req.local_addr + ":" + std::to_string(req.local_port);
  std::string proto = req.get_header_value("X-Forwarded-Proto");
  return (proto.empty() ? "http" : proto) + "://" + host;
}

bool json_content_type(const Request& req) {
  std::string ct = req.get_header_value("Content-Type");
  return ct.empty() || ct.find("json") != std::string::npos;
}

std::vector<std::pair<std::string, std::string>> query_params(const Request& req) {
  // httplib keeps params in a multimap (sorted by name); the request order comes from the target.
  std::vector<std::pair<std::string, std::string>> out;
  auto q = req.target.find('?');
  if (q == std::string::npos) return out;
  std::string_view qs(req.target);
  qs.remove_prefix(q + 1);
  while (!qs.empty()) {
    auto amp = qs.find('&');
    std::string_view pair = qs.substr(0, amp);
    qs = amp == std::string_view::npos ? std::string_view() : qs.substr(amp + 1);
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    std::string name = httplib::detail::decode_url(std::string(pair.substr(0, eq)), true);
    std::string value =
        eq == std::string_view::npos ? "" : httplib::detail::decode_url(std::string(pair.substr(eq + 1)), true);
    out.emplace_back(std::move(name), std::move(value));
  }
  return out;
}

std::string query_string(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string out;
  for (const auto& [k, v] : params) {
    out += out.empty() ? "" : "&";
    out += httplib::detail::encode_query_param(k) + "=" + httplib::detail::encode_query_param(v);
  }
  return out;
}

std::string method_of(schema::Change c) {
  return c == schema::Change::kCreated ? "POST" : c == schema::Change::kUpdated ? "PUT" : "DELETE";
}

// A Bundle built as text: the resources are spliced in as stored, never re-serialised.
class BundleText {
 public:
  BundleText(std::string_view type, std::optional<int64_t> total,
             const std::vector<std::pair<std::string, std::string>>& links) {
    json head{{"resourceType", "Bundle"}, {"type", type}};
    if (total) head["total"] = *total;
    json l = json::array();
    for (const auto& [rel, url] : links) l.push_back({{"relation", rel}, {"url", url}});
    head["link"] = l;
    out_ = head.dump();
    out_.pop_back();  // reopen the object
    out_ += ",\"entry\":[";
  }
  void add(const std::string& full_url, const std::optional<std::string>& resource, const json& extra) {
    out_ += first_ ? "" : ",";
    first_ = false;
    out_ += "{\"fullUrl\":" + json(full_url).dump();
    if (resource) out_ += ",\"resource\":" + *resource;
    for (const auto& [k, v] : extra.items()) out_ += "," + json(k).dump() + ":" + v.dump();
    out_ += "}";
  }
  std::string finish() { return out_ + "]}"; }

 private:
  std::string out_;
  bool first_ = true;
};

std::string capability_statement(const ServerOptions& o, const Store& store) {
  json resources = json::array();
  for (const auto& type : r4_resource_types()) {
    json r{{"type", type},
           {"versioning", "versioned-update"},
           {"readHistory", true},
           {"updateCreate", true},
           {"conditionalCreate", false},
           {"conditionalUpdate", false},
           {"conditionalDelete", "not-supported"}};
    json interactions = json::array();
    for (const char* i : {"read", "vread", "update", "delete", "history-instance", "history-type",
                          "create", "search-type"})
      interactions.push_back({{"code", i}});
    r["interaction"] = interactions;
    json params = json::array({{{"name", "_id"}, {"type", "token"}},
                               {{"name", "_lastUpdated"}, {"type", "date"}}});
    if (o.schema == Schema::kCurrent && store.indexer()) {
      static const char* kTypeNames[] = {"string", "token", "reference", "date", "number",
                                         "quantity", "uri", "composite", "special"};
      for (const auto* p : store.indexer()->params(type)) {
        if (p->code == "_id" || p->code == "_lastUpdated" ||
            p->type == index::ParamType::kComposite || p->type == index::ParamType::kSpecial)
          continue;
        params.push_back({{"name", p->code}, {"type", kTypeNames[static_cast<int>(p->type)]}});
      }
    }
    r["searchParam"] = params;
    resources.push_back(r);
  }
  json cs{{"resourceType", "CapabilityStatement"},
          {"status", "active"},
          {"date", format_instant(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count())},
          {"kind", "instance"},
          {"software", {{"name", "fhirshift"}, {"version", kVersion}}},
          {"implementation",
           {{"description", std::string("fhirshift serve over the ") +
                                std::string(schema_name(o.schema)) + " schema" +
                                (o.read_only ? " (read-only)" : "")}}},
          {"fhirVersion", "4.0.1"},
          {"format", json::array({"application/fhir+json", "json"})},
          {"rest", json::array({{{"mode", "server"}, {"resource", resources}}})}};
  return cs.dump();
}

bool valid_id(const std::string& id) { return schema::is_valid_fhir_id(id); }

}  // namespace

FhirServer::FhirServer(ServerOptions options)
    : options_(std::move(options)),
      http_(std::make_unique<httplib::Server>()),
      gate_(std::max(1, options_.threads - 8), options_.hold_timeout) {
  mongo::ensure_driver_initialized();
  pool_ = std::make_shared<mongo::ClientPool>(mongo::Uri::parse(options_.connection_string),
                                              "fhirshift-serve");
  std::shared_ptr<const index::Indexer> indexer;
  if (options_.schema == Schema::kCurrent) {
    indexer = index::Indexer::load(options_.search_parameters.empty()
                                       ? index::Indexer::default_definitions_path()
                                       : std::filesystem::path(options_.search_parameters));
  }
  store_ = std::make_unique<Store>(pool_, options_.collection, options_.schema, indexer);
  capability_statement_ = capability_statement(options_, *store_);
  routes();
}

FhirServer::~FhirServer() { stop(); }

void FhirServer::bind() {
  if (options_.port == 0) {
    port_ = http_->bind_to_any_port(options_.host);
    if (port_ <= 0) throw std::runtime_error("cannot bind any port on " + options_.host);
  } else {
    if (!http_->bind_to_port(options_.host, options_.port))
      throw std::runtime_error("cannot listen on " + options_.host + ":" +
                               std::to_string(options_.port) +
                               " (is another process using the port?)");
    port_ = options_.port;
  }
}

void FhirServer::serve() { http_->listen_after_bind(); }

void FhirServer::stop() {
  if (http_) http_->stop();
}

void FhirServer::routes() {
  auto& s = *http_;
  int threads = std::max(2, options_.threads);
  s.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  s.set_payload_max_length(options_.max_body_bytes);
  s.set_keep_alive_max_count(1000);
  s.set_read_timeout(std::chrono::seconds(60));
  s.set_write_timeout(std::chrono::seconds(60));

  // cpp-httplib reads Content-Length with strtoull: "-1" becomes 2^64-1, and the request thread
  // then waits for that body until the read timeout (60 s); "1x" or "abc" are read as 1 or 0.
  // This handler runs before any body is read and answers such a request at once. Where its body
  // ends is unknown, so the connection is not to be reused (Connection: close).
  s.set_pre_routing_handler([](const Request& req, Response& res) -> httplib::Server::HandlerResponse {
    const size_t n = req.get_header_value_count("Content-Length");
    for (size_t i = 0; i < n; ++i) {
      const std::string value = req.get_header_value("Content-Length", i);
      const bool valid = is_valid_content_length(value);
      if (valid && value == req.get_header_value("Content-Length", 0)) continue;
      constexpr size_t kEcho = 40;
      outcome(res, 400, "structure",
              valid ? "conflicting Content-Length headers: send one"
                    : "invalid Content-Length \"" + value.substr(0, kEcho) + (value.size() > kEcho ? "..." : "") +
                          "\": send the body's size in bytes as a decimal number");
      res.set_header("Connection", "close");
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  s.set_error_handler(httplib::Server::HandlerWithResponse(
      [this](const Request& req, Response& res) -> httplib::Server::HandlerResponse {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    if (res.status == 413)
      outcome(res, 413, "too-long",
              "the body is larger than " + std::to_string(options_.max_body_bytes) + " bytes");
    else if (res.status == 404)
      outcome(res, 404, "not-supported", "no FHIR interaction at " + req.method + " " + req.path);
    else
      outcome(res, res.status, "processing", "HTTP " + std::to_string(res.status));
    return httplib::Server::HandlerResponse::Handled;
  }));
  s.set_exception_handler([](const Request& req, Response& res, std::exception_ptr ep) {
    std::string what = "unknown error";
    bool transient = false;
    try {
      std::rethrow_exception(ep);
    } catch (const mongo::MongoError& e) {
      what = e.what();
      transient = true;  // the database did not answer or refused: the client may retry
    } catch (const std::exception& e) {
      what = e.what();
    }
    spdlog::error("{} {}: {}", req.method, req.path, what);
    if (transient) unavailable(res, "the database failed: " + what);
    else outcome(res, 500, "exception", what);
  });
  s.set_logger([](const Request& req, const Response& res) {
    spdlog::debug("{} {} -> {}", req.method, req.target, res.status);
  });

  s.Get("/healthz", [](const Request&, Response& res) { res.set_content("ok\n", "text/plain"); });
  s.Get("/readyz", [this](const Request&, Response& res) {
    try {
      store_->ping();
      res.set_content(R"({"ready":true,"schema":")" + std::string(schema_name(options_.schema)) +
                          "\"}",
                      "application/json");
    } catch (const std::exception& e) {
      res.status = 503;
      res.set_content(json{{"ready", false}, {"reason", e.what()}}.dump(), "application/json");
    }
  });
  s.Get("/metadata", [this](const Request&, Response& res) {
    res.set_content(capability_statement_, kFhirJson);
  });

  if (options_.no_admin) {
    auto none = [](const Request& req, Response& res) {
      outcome(res, 404, "not-found", req.path + ": this server has no admin endpoints (--no-admin)");
    };
    s.Get("/admin/.*", none);
    s.Post("/admin/.*", none);
  } else {
    s.Post("/admin/fence", [this](const Request&, Response& res) {
      auto st = gate_.fence(options_.hold_timeout);
      spdlog::info("fenced: writes are held (held {}, in flight {})", st.held, st.in_flight);
      res.set_content(json{{"fenced", true}, {"heldWrites", st.held}, {"inFlightWrites", st.in_flight}}
                          .dump(),
                      "application/json");
    });
    s.Post("/admin/release", [this](const Request& req, Response& res) {
      std::string forward = req.has_param("forward") ? req.get_param_value("forward") : "";
      if (!forward.empty() && forward.rfind("http://", 0) != 0) {
        outcome(res, 400, "value", "forward must be an http:// URL, got " + forward);
        return;
      }
      while (!forward.empty() && forward.back() == '/') forward.pop_back();
      int64_t n = gate_.release(forward);
      if (forward.empty()) spdlog::info("released: {} held writes proceed here", n);
      else spdlog::info("released: {} held writes and every later write go to {}", n, forward);
      res.set_content(json{{"released", n}, {"forwardTo", forward}}.dump(), "application/json");
    });
    s.Get("/admin/status", [this](const Request&, Response& res) {
      auto st = gate_.status();
      res.set_content(json{{"fenced", st.fenced},
                           {"forwardTo", st.forward_to},
                           {"heldWrites", st.held},
                           {"inFlightWrites", st.in_flight},
                           {"readOnly", options_.read_only},
                           {"schema", schema_name(options_.schema)}}
                          .dump(),
                      "application/json");
    });
  }

  // FHIR interactions. The type is checked in each handler so that an unknown type gets a FHIR
  // answer, not the catch-all 404.
  const std::string type = "/([A-Za-z]+)";
  const std::string id = "/([^/]+)";
  auto typed = [this](auto handler) {
    return [this, handler](const Request& req, Response& res) {
      const std::string type = req.matches[1];
      if (!is_r4_resource_type(type)) {
        outcome(res, 404, "not-supported", "unknown resource type \"" + type + "\" (FHIR R4)");
        return;
      }
      if (req.matches.size() > 2 && !valid_id(req.matches[2])) {
        outcome(res, 400, "value",
                "\"" + std::string(req.matches[2]) + "\" is not a FHIR id ([A-Za-z0-9-.]{1,64})");
        return;
      }
      handler(req, res, type);
    };
  };
  s.Get(type + "/?", typed([this](const Request& req, Response& res, const std::string& t) {
          search(req, res, t);
        }));
  s.Get(type + "/_history/?", typed([this](const Request& req, Response& res, const std::string& t) {
          history(req, res, t, std::nullopt);
        }));
  s.Post(type + "/?", typed([this](const Request& req, Response& res, const std::string& t) {
           create(req, res, t);
         }));
  s.Get(type + id + "/?", typed([this](const Request& req, Response& res, const std::string& t) {
          read(req, res, t, req.matches[2]);
        }));
  s.Put(type + id + "/?", typed([this](const Request& req, Response& res, const std::string& t) {
          update(req, res, t, req.matches[2]);
        }));
  s.Delete(type + id + "/?", typed([this](const Request& req, Response& res, const std::string& t) {
             remove(req, res, t, req.matches[2]);
           }));
  s.Get(type + id + "/_history/?",
        typed([this](const Request& req, Response& res, const std::string& t) {
          history(req, res, t, std::string(req.matches[2]));
        }));
  s.Get(type + id + "/_history" + id + "/?",
        typed([this](const Request& req, Response& res, const std::string& t) {
          vread(req, res, t, req.matches[2], req.matches[3]);
        }));
  auto not_allowed = [](const Request& req, Response& res) {
    outcome(res, 405, "not-supported", req.method + " " + req.path + " is not a FHIR interaction");
  };
  s.Patch(".*", not_allowed);
  s.Put(type + "/?", not_allowed);
  s.Delete(type + "/?", not_allowed);
  s.Post(type + id + "/?", not_allowed);
}

void FhirServer::handle_write(const Request& req, Response& res, const std::function<void()>& apply) {
  if (options_.read_only) {
    unavailable(res, "this server is read-only (--read-only): writes go to the other server");
    return;
  }
  WriteGate::Admission a = gate_.enter();
  if (a.route == WriteGate::Route::kUnavailable) {
    unavailable(res, a.reason);
    return;
  }
  struct Leave {
    WriteGate& g;
    ~Leave() { g.leave(); }
  } leave{gate_};
  if (a.route == WriteGate::Route::kForward) forward(req, res, a.forward_to);
  else apply();
}

void FhirServer::forward(const Request& req, Response& res, const std::string& target) {
  if (req.has_header(kForwardedHeader)) {
    outcome(res, 508, "processing",
            "forwarding loop: this write was forwarded by " +
                req.get_header_value(kForwardedHeader) + " and this server forwards to " + target);
    return;
  }
  httplib::Client cli(target);
  cli.set_url_encode(false);
  cli.set_connection_timeout(std::chrono::seconds(5));
  cli.set_read_timeout(std::chrono::seconds(60));
  httplib::Request out;
  out.method = req.method;
  out.path = req.target;
  out.body = req.body;
  for (const char* h : {"Content-Type", "If-Match", "Prefer", "Accept"})
    if (req.has_header(h)) out.set_header(h, req.get_header_value(h));
  std::string host = req.get_header_value("X-Forwarded-Host");
  out.set_header("X-Forwarded-Host", host.empty() ? req.get_header_value("Host") : host);
  out.set_header(kForwardedHeader, "fhirshift serve :" + std::to_string(port_));
  auto r = cli.send(out);
  if (!r) {
    spdlog::warn("forwarding {} {} to {} failed: {}", req.method, req.path, target,
                 httplib::to_string(r.error()));
    unavailable(res, "could not forward the write to " + target + ": " +
                         httplib::to_string(r.error()));
    return;
  }
  res.status = r->status;
  for (const char* h : {"ETag", "Location", "Last-Modified", "Retry-After"})
    if (r->has_header(h)) res.set_header(h, r->get_header_value(h));
  res.set_header("X-Fhirshift-Forwarded-To", target);
  res.set_content(r->body, r->get_header_value("Content-Type").empty()
                               ? std::string(kFhirJson)
                               : r->get_header_value("Content-Type"));
}

void FhirServer::answer_version(const Request& req, Response& res, int status,
                                const StoredVersion& v) {
  res.status = status;
  res.set_header("ETag", etag(v.v));
  res.set_header("Last-Modified", format_http_date(v.lu_ms));
  if (status == 201 || (status == 200 && req.method == "PUT"))
    res.set_header("Location", base_url(req) + "/" + v.type + "/" + v.id + "/_history/" + v.v);
  if (v.json) res.set_content(*v.json, kFhirJson);
}

namespace {
void write_failed(Response& res, const WriteResult& r, const std::string& type,
                  const std::string& id, const std::optional<std::string>& if_match) {
  if (r.outcome == WriteOutcome::kPreconditionFailed) {
    std::string now = !r.version          ? "it does not exist"
                      : r.version->deleted() ? "it is deleted (version " + r.version->v + ")"
                                             : "the current version is " + r.version->v;
    outcome(res, 412, "conflict",
            "If-Match " + (if_match ? *if_match : std::string("?")) + " does not match " + type +
                "/" + id + ": " + now);
    if (r.version) res.set_header("ETag", etag(r.version->v));
  } else {
    outcome(res, 409, "conflict",
            type + "/" + id + " is being updated by other clients: lost " +
                std::to_string(r.attempts) + " races in a row; retry");
  }
}

std::optional<std::string> if_match_of(const Request& req, Response& res, bool& bad) {
  bad = false;
  if (!req.has_header("If-Match")) return std::nullopt;
  const std::string sent = req.get_header_value("If-Match");
  auto v = version_from_etag(sent);
  if (!v) {
    // 400, not 412: a 412 would tell the client its version is stale when it sent no version.
    constexpr size_t kEcho = 80;
    outcome(res, 400, "value",
            "malformed If-Match header \"" + sent.substr(0, kEcho) + (sent.size() > kEcho ? "..." : "") +
                "\": send the ETag of the version you read, a weak ETag such as W/\"3\"");
    bad = true;
  }
  return v;
}
}  // namespace

void FhirServer::create(const Request& req, Response& res, const std::string& type) {
  if (!json_content_type(req)) {
    outcome(res, 415, "not-supported", "send FHIR JSON (Content-Type: application/fhir+json)");
    return;
  }
  handle_write(req, res, [&] {
    WriteRequest w{WriteKind::kCreate, type, new_resource_id(), req.body, std::nullopt};
    try {
      WriteResult r = store_->write(w);
      if (r.outcome != WriteOutcome::kCreated) return write_failed(res, r, type, w.id, std::nullopt);
      answer_version(req, res, 201, *r.version);
    } catch (const BodyError& e) {
      outcome(res, e.status(), e.code(), e.what());
    }
  });
}

void FhirServer::update(const Request& req, Response& res, const std::string& type,
                        const std::string& id) {
  if (!json_content_type(req)) {
    outcome(res, 415, "not-supported", "send FHIR JSON (Content-Type: application/fhir+json)");
    return;
  }
  handle_write(req, res, [&] {
    bool bad = false;
    auto if_match = if_match_of(req, res, bad);
    if (bad) return;
    try {
      WriteResult r = store_->write({WriteKind::kUpdate, type, id, req.body, if_match});
      if (r.outcome == WriteOutcome::kCreated) return answer_version(req, res, 201, *r.version);
      if (r.outcome == WriteOutcome::kUpdated) return answer_version(req, res, 200, *r.version);
      write_failed(res, r, type, id, if_match);
    } catch (const BodyError& e) {
      outcome(res, e.status(), e.code(), e.what());
    }
  });
}

void FhirServer::remove(const Request& req, Response& res, const std::string& type,
                        const std::string& id) {
  handle_write(req, res, [&] {
    bool bad = false;
    auto if_match = if_match_of(req, res, bad);
    if (bad) return;
    WriteResult r = store_->write({WriteKind::kDelete, type, id, {}, if_match});
    if (r.outcome == WriteOutcome::kDeleted) {
      outcome(res, 200, "informational",
              "deleted " + type + "/" + id + " (version " + r.version->v + ")", "information");
      res.set_header("ETag", etag(r.version->v));
      return;
    }
    if (r.outcome == WriteOutcome::kNothingToDelete) {
      outcome(res, 200, "informational",
              type + "/" + id + (r.version ? " was already deleted" : " does not exist") +
                  ": nothing to delete",
              "information");
      return;
    }
    write_failed(res, r, type, id, if_match);
  });
}

void FhirServer::read(const Request& req, Response& res, const std::string& type,
                      const std::string& id) {
  auto v = store_->read(type, id);
  if (!v) return outcome(res, 404, "not-found", type + "/" + id + " is not known");
  if (v->deleted()) {
    outcome(res, 410, "deleted", type + "/" + id + " was deleted (version " + v->v + ")");
    res.set_header("ETag", etag(v->v));
    res.set_header("Last-Modified", format_http_date(v->lu_ms));
    return;
  }
  answer_version(req, res, 200, *v);
}

void FhirServer::vread(const Request& req, Response& res, const std::string& type,
                       const std::string& id, const std::string& version) {
  auto v = store_->vread(type, id, version);
  if (!v) {
    bool known = store_->read(type, id).has_value();
    return outcome(res, 404, "not-found",
                   known ? type + "/" + id + " has no version " + version
                         : type + "/" + id + " is not known");
  }
  if (v->deleted()) {
    outcome(res, 410, "deleted", "version " + version + " of " + type + "/" + id + " is its deletion");
    res.set_header("ETag", etag(v->v));
    return;
  }
  answer_version(req, res, 200, *v);
}

void FhirServer::history(const Request& req, Response& res, const std::string& type,
                         const std::optional<std::string>& id) {
  int64_t count = kDefaultHistoryCount, offset = 0;
  std::optional<int64_t> since;
  std::vector<std::pair<std::string, std::string>> kept;
  try {
    for (const auto& [k, v] : query_params(req)) {
      if (k == "_count" || k == "_offset") {
        std::size_t pos = 0;
        long long n = std::stoll(v, &pos);
        if (pos != v.size() || n < 0) throw std::invalid_argument(v);
        if (k == "_count") count = std::min<int64_t>(n, kMaxPageSize);
        else offset = n;
      } else if (k == "_since") {
        since = parse_search_date(v).lo_ms;
        kept.emplace_back(k, v);
      } else if (k != "_format" && k != "_pretty") {
        return outcome(res, 400, "not-supported", "history does not support the parameter " + k);
      }
    }
  } catch (const SearchError& e) {
    return outcome(res, 400, e.code(), std::string("_since: ") + e.what());
  } catch (const std::exception&) {
    return outcome(res, 400, "value", "_count and _offset must be non-negative integers");
  }
  if (id && !store_->read(type, *id))
    return outcome(res, 404, "not-found", type + "/" + *id + " is not known");
  HistoryPage page = store_->history(type, id, since, count, offset);
  const std::string base = base_url(req);
  const std::string path = base + "/" + type + (id ? "/" + *id : "") + "/_history";
  auto link = [&](int64_t off) {
    auto p = kept;
    p.emplace_back("_count", std::to_string(count));
    if (off > 0) p.emplace_back("_offset", std::to_string(off));
    return path + "?" + query_string(p);
  };
  std::vector<std::pair<std::string, std::string>> links{{"self", link(offset)}};
  if (offset + count < page.total) links.emplace_back("next", link(offset + count));
  if (offset > 0) links.emplace_back("previous", link(std::max<int64_t>(0, offset - count)));
  BundleText b("history", page.total, links);
  for (const auto& v : page.versions) {
    json extra{{"request",
                {{"method", method_of(v.change)},
                 {"url", v.change == schema::Change::kCreated ? v.type : v.type + "/" + v.id}}},
               {"response",
                {{"status", v.change == schema::Change::kCreated   ? "201 Created"
                            : v.change == schema::Change::kUpdated ? "200 OK"
                                                                   : "204 No Content"},
                 {"etag", etag(v.v)},
                 {"lastModified", format_instant(v.lu_ms)}}}};
    b.add(base + "/" + v.type + "/" + v.id, v.json, extra);
  }
  res.set_content(b.finish(), kFhirJson);
}

void FhirServer::search(const Request& req, Response& res, const std::string& type) {
  auto params = query_params(req);
  SearchQuery q;
  try {
    q = build_search(options_.schema, type, params, store_->indexer());
  } catch (const SearchError& e) {
    return outcome(res, 400, e.code(), e.what());
  }
  auto client = pool_->acquire();
  auto c = client.collection(pool_->database(), store_->collection_name());
  std::vector<StoredVersion> hits;
  bool more = false;
  std::optional<int64_t> total;
  mongo::Builder opts;
  opts.append_document("sort", q.sort.get());
  if (q.contained != ContainedScope::kResources) {
    // A contained match stands for its container (R4 `_contained`, `_containedType=container`):
    // the results are the distinct resources in match order, so every candidate is read and the
    // paging happens here; the containers of a page are then read by `_id` in one query.
    std::vector<std::string> order;                  // result `_id`s, first match first
    std::map<std::string, bson_oid_t> result_ids;    // hex -> _id
    std::map<std::string, StoredVersion> resources;  // matches that are resources themselves
    auto cursor = c.find(q.filter.get(), opts.get());
    while (const bson_t* doc = cursor.next()) {
      mongo::View v(doc);
      if (q.post_filter && !q.post_filter(v)) continue;
      const bool contained = v.boolean("cnt").value_or(false);
      std::optional<bson_oid_t> id = contained ? v.oid("container") : v.oid("_id");
      if (!id) continue;
      std::string hex = mongo::oid_to_string(*id);
      if (!result_ids.emplace(hex, *id).second) {
        if (!contained && !resources.count(hex)) resources.emplace(hex, Store::decode(doc));
        continue;
      }
      order.push_back(hex);
      if (!contained) resources.emplace(hex, Store::decode(doc));
    }
    const int64_t matched = static_cast<int64_t>(order.size());
    const int64_t from = std::min(q.offset, matched), upto = std::min(matched, from + q.count);
    more = upto < matched;
    total = matched;
    std::vector<bson_oid_t> containers;
    for (int64_t i = from; i < upto; ++i)
      if (!resources.count(order[i])) containers.push_back(result_ids[order[i]]);
    if (!containers.empty()) {
      mongo::Builder f;
      f.document("_id", [&](mongo::Builder& in) { in.append_in(containers); });
      mongo::Bson by_id = f.extract();
      auto found = c.find(by_id.get());
      while (const bson_t* doc = found.next()) {
        mongo::View v(doc);
        // A current contained entry's container is current; a container caught mid-update is not
        // an answer.
        if (!v.boolean("cur").value_or(false) || v.string("change").value_or("") == "d") continue;
        resources.emplace(mongo::oid_to_string(*v.oid("_id")), Store::decode(doc));
      }
    }
    for (int64_t i = from; i < upto; ++i)
      if (auto it = resources.find(order[i]); it != resources.end())
        hits.push_back(std::move(it->second));
  } else if (!q.post_filter) {
    opts.append("skip", q.offset);
    opts.append("limit", q.count + 1);
    if (q.count > 0) {
      auto cursor = c.find(q.filter.get(), opts.get());
      while (const bson_t* doc = cursor.next()) hits.push_back(Store::decode(doc));
    }
    more = static_cast<int64_t>(hits.size()) > q.count;
    if (more) hits.pop_back();
    if (q.total_accurate || q.count == 0) total = c.count(q.filter.get());
    else if (!more && (q.offset == 0 || !hits.empty()))  // this page ends the result: exact
      total = q.offset + static_cast<int64_t>(hits.size());
  } else {
    // The database returns candidates; the exact test and the paging happen here.
    auto cursor = c.find(q.filter.get(), opts.get());
    int64_t matched = 0;
    while (const bson_t* doc = cursor.next()) {
      if (!q.post_filter(mongo::View(doc))) continue;
      ++matched;
      if (matched <= q.offset) continue;
      if (static_cast<int64_t>(hits.size()) < q.count) {
        hits.push_back(Store::decode(doc));
      } else {
        more = true;
        if (!q.total_accurate && q.count > 0) break;
      }
    }
    // Exact when counted to the end: asked for, or this page ends the result.
    if (q.total_accurate || q.count == 0 || (!more && (q.offset == 0 || !hits.empty())))
      total = matched;
  }
  const std::string base = base_url(req);
  auto link = [&](int64_t off) {
    auto p = q.link_params;
    p.emplace_back("_count", std::to_string(q.count));
    if (off > 0) p.emplace_back("_offset", std::to_string(off));
    return base + "/" + type + "?" + query_string(p);
  };
  std::vector<std::pair<std::string, std::string>> links{{"self", link(q.offset)}};
  if (more) links.emplace_back("next", link(q.offset + q.count));
  if (q.offset > 0) links.emplace_back("previous", link(std::max<int64_t>(0, q.offset - q.count)));
  BundleText b("searchset", total, links);
  for (const auto& v : hits)
    b.add(base + "/" + v.type + "/" + v.id, v.json, json{{"search", {{"mode", "match"}}}});
  res.set_content(b.finish(), kFhirJson);
}

}  // namespace fhirshift::server
