// Client for HAProxy's runtime API (the `stats socket ... level admin` unix socket).
//
// One command per connection (HAProxy's non-interactive mode): connect, send the command, read the
// answer until HAProxy closes. Nothing here rewrites the configuration or reloads HAProxy: a switch
// is `set server <backend>/<server> state ready|drain|maint`, which takes effect at once and keeps
// every established client connection.
//
// Every failure is a HaproxyError whose message names the socket and the command, and says what to
// check ("is HAProxy running?", "is the socket at level admin?").
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace fhirshift::cutover {

class HaproxyError : public std::runtime_error {
 public:
  HaproxyError(const std::string& socket_path, const std::string& command, const std::string& what);
  const std::string& socket_path() const { return socket_path_; }
  const std::string& command() const { return command_; }

 private:
  std::string socket_path_;
  std::string command_;
};

// The administrative state an operator sets (`set server B/S state ...`).
enum class AdminState { kReady, kDrain, kMaint };
std::string_view to_string(AdminState s);
std::optional<AdminState> parse_admin_state(std::string_view text);  // case-insensitive

// One line of `show servers state` (format version 1). The raw fields are kept by column name.
struct ServerState {
  // srv_op_state values
  static constexpr int kOpStopped = 0;
  static constexpr int kOpStarting = 1;
  static constexpr int kOpRunning = 2;
  static constexpr int kOpStopping = 3;
  // srv_admin_state bits (HAProxy's SRV_ADMF_*)
  static constexpr int kAdmForcedMaint = 0x01;
  static constexpr int kAdmInheritedMaint = 0x02;
  static constexpr int kAdmConfigMaint = 0x04;  // `disabled` in the configuration; informational
  static constexpr int kAdmForcedDrain = 0x08;
  static constexpr int kAdmInheritedDrain = 0x10;
  static constexpr int kAdmResolutionMaint = 0x20;
  static constexpr int kAdmHostnameMaint = 0x40;
  static constexpr int kAdmMaintMask = kAdmForcedMaint | kAdmInheritedMaint | kAdmResolutionMaint |
                                       kAdmHostnameMaint;
  static constexpr int kAdmDrainMask = kAdmForcedDrain | kAdmInheritedDrain;

  std::string backend;
  std::string server;
  std::string address;  // "127.0.0.1"
  int port = 0;
  int op_state = kOpStopped;
  int admin_state = 0;
  int weight = 0;        // srv_uweight
  int check_health = 0;  // srv_check_health
  // From `show stat` (check_rise, check_fall); 0 when unknown or the server has no health check.
  int check_rise = 0;
  int check_fall = 0;
  std::map<std::string, std::string> fields;

  bool in_maintenance() const { return (admin_state & kAdmMaintMask) != 0; }
  bool draining() const { return (admin_state & kAdmDrainMask) != 0; }
  bool running() const { return op_state == kOpRunning; }
  // Receives new requests: up (health checks pass), not in maintenance, not draining.
  bool serving() const { return running() && !in_maintenance() && !draining() && weight > 0; }
  // Leaving maintenance, HAProxy sets a server's check health to `rise` ("start OK but check
  // immediately"); a passed check raises it to rise + fall - 1. So health at that maximum proves a
  // check passed since the server left maintenance (with fall >= 2, as in the shipped template).
  // Without check information, running() is all there is.
  bool check_confirmed() const {
    if (check_rise <= 0 || check_fall <= 1) return running();
    return running() && check_health >= check_rise + check_fall - 1;
  }
  // "UP", "DOWN", "MAINT", "DRAIN", "STARTING", "STOPPING": what an operator reads in the stats page.
  std::string describe() const;
};

// The cut-over's write fence inside HAProxy (tools/haproxy/fhirshift_fence.lua), as
// `fhirshift fence show <name>` reports it: `name=fhir fenced=1 held=3 in_flight=0 passed=812 held_ms=1520`.
struct FenceStatus {
  std::string name;
  bool fenced = false;
  int64_t held = 0;  // writes waiting in HAProxy now
  // Writes past the fence whose answer has not been relayed yet (sent to a server, or about to
  // be); nullopt when HAProxy has no `fhirshift_writes` stick table to count them.
  std::optional<int64_t> in_flight;
  int64_t passed = 0;  // writes let through since HAProxy started
  int64_t held_ms = 0;  // how long the fence has been up
};

// One row of `show stat` (CSV), keyed by the header's column names ("pxname", "svname", "status", ...).
using StatRow = std::map<std::string, std::string>;

// Parsers, public for unit tests. They throw std::runtime_error on text they cannot read.
std::vector<ServerState> parse_servers_state(const std::string& text);
std::vector<StatRow> parse_show_stat(const std::string& csv);
std::map<std::string, std::string> parse_show_info(const std::string& text);
FenceStatus parse_fence_status(const std::string& line);

class HaproxyRuntime {
 public:
  explicit HaproxyRuntime(std::string socket_path,
                          std::chrono::milliseconds timeout = std::chrono::seconds(5));

  const std::string& socket_path() const { return socket_path_; }

  // Sends one command and returns HAProxy's answer (without the trailing empty line).
  std::string execute(const std::string& command) const;

  // `show servers state [backend]`.
  std::vector<ServerState> show_servers_state(const std::string& backend = "") const;
  // One server's state, with check_rise/check_fall from `show stat`; throws HaproxyError when the
  // backend has no such server.
  ServerState server_state(const std::string& backend, const std::string& server) const;
  std::vector<StatRow> show_stat() const;
  std::map<std::string, std::string> show_info() const;
  // `set server B/S state ready|drain|maint`; throws HaproxyError with HAProxy's answer on refusal.
  void set_server_state(const std::string& backend, const std::string& server,
                        AdminState state) const;
  // `set weight B/S <weight>`: "0" keeps an UP server out of load balancing, "100%" restores the
  // configured weight.
  void set_weight(const std::string& backend, const std::string& server,
                  const std::string& weight) const;
  // `fhirshift fence show|on|off <name>`: the write fence's state, and raising or lifting it (the
  // answer is the state afterwards). A HAProxy without fhirshift_fence.lua answers "Unknown
  // command": the HaproxyError then says which lines to add.
  FenceStatus fence_status(const std::string& name) const;
  FenceStatus set_fence(const std::string& name, bool on) const;

 private:
  std::string socket_path_;
  std::chrono::milliseconds timeout_;
};

}  // namespace fhirshift::cutover
