// Connection handling: a parsed connection string, a thread-safe client pool, and the per-thread
// client leased from it. Connection strings are taken exactly as MongoDB documents them
// (mongodb:// and mongodb+srv://, several hosts, replicaSet, tls, authSource, ...).
#pragma once

#include <mongoc/mongoc.h>

#include <chrono>
#include <memory>
#include <string>

#include "mongo/bson.h"
#include "mongo/collection.h"

namespace fhirshift::mongo {

// Initialises the driver once per process (safe to call from anywhere, any number of times).
void ensure_driver_initialized();

class Uri {
 public:
  // Throws std::invalid_argument with the driver's reason when the string is not a valid URI.
  static Uri parse(const std::string& connection_string);
  Uri(const Uri& other);
  Uri& operator=(const Uri& other);
  Uri(Uri&&) noexcept = default;
  Uri& operator=(Uri&&) noexcept = default;

  // The database in the URI's path, or "vonkdata" when it has none (the legacy tool's default).
  const std::string& database() const { return database_; }
  // "h1:27017,h2:27017" for messages ("cannot reach h1:27017,h2:27017").
  const std::string& hosts() const { return hosts_; }
  // The connection string with any password replaced by "****", safe to log.
  std::string redacted() const;
  const mongoc_uri_t* get() const { return uri_.get(); }
  // Lowers serverSelectionTimeoutMS to `cap` (at least 100 ms) when it is higher: an operation
  // that finds no server then fails within `cap`, so a retry budget of `cap` is not overrun by
  // the first attempt's wait for a server. Call before making pools from this URI.
  void cap_server_selection_timeout(std::chrono::milliseconds cap);
  // The durability the connection uses, for logs: {w, j, wtimeout} and the read concern level.
  // Without `w`/`journal` (and `readConcernLevel`) in the connection string they are w: "majority",
  // j: true and read concern "majority" (docs/schema.md, "Durability").
  std::string write_concern_json() const;
  std::string read_concern_level() const;
  bool retry_writes() const;

 private:
  Uri() = default;
  struct Free {
    void operator()(mongoc_uri_t* u) const { mongoc_uri_destroy(u); }
  };
  std::unique_ptr<mongoc_uri_t, Free> uri_;
  std::string text_;
  std::string database_;
  std::string hosts_;
};

class ClientPool;

// A client leased from a pool for the current thread; returned to the pool on destruction.
class Client {
 public:
  Client(Client&& other) noexcept;
  Client& operator=(Client&&) = delete;
  ~Client();

  Collection collection(const std::string& database, const std::string& name);
  // Runs a command on `database` and returns the reply; throws MongoError naming the command.
  Bson command(const std::string& database, const Bson& command);
  // Throws MongoError "cannot reach <hosts>: ..." when the deployment does not answer.
  void ping();
  mongoc_client_t* get() { return client_; }

 private:
  friend class ClientPool;
  Client(ClientPool* pool, mongoc_client_t* client) : pool_(pool), client_(client) {}
  ClientPool* pool_;
  mongoc_client_t* client_;
};

// Thread-safe; lease one Client per thread with `acquire()`.
class ClientPool {
 public:
  explicit ClientPool(const Uri& uri, const std::string& app_name = "fhirshift");
  ~ClientPool();
  ClientPool(const ClientPool&) = delete;
  ClientPool& operator=(const ClientPool&) = delete;

  Client acquire();
  const Uri& uri() const { return uri_; }
  const std::string& database() const { return uri_.database(); }

 private:
  friend class Client;
  Uri uri_;
  mongoc_client_pool_t* pool_;
};

// Pings the deployment with a client of its own, again and again, until it answers (returns) or
// `deadline` passes (throws MongoError "cannot reach MongoDB at <hosts>: ..."). Each try is bounded
// by the time left (server selection, connect and socket timeouts), unlike an operation on a
// pool, which may wait for the pool's whole serverSelectionTimeoutMS.
void wait_until_reachable(const Uri& uri, std::chrono::steady_clock::time_point deadline);
// True when the server is FerretDB (buildInfo has `ferretdbVersion`); false on any failure.
bool is_ferretdb(Client& client);

// What `hello` says about the deployment.
struct Topology {
  bool is_mongos = false;      // msg: "isdbgrid"
  bool is_replica_set = false;  // setName present
  int max_wire_version = 0;
};
Topology describe_topology(Client& client);

}  // namespace fhirshift::mongo
