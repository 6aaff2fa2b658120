#include "cutover/haproxy_runtime.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <sstream>

namespace fhirshift::cutover {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::vector<std::string> split_ws(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream in(line);
  std::string tok;
  while (in >> tok) out.push_back(tok);
  return out;
}

std::vector<std::string> split_csv(const std::string& line) {
  // HAProxy's stats CSV never quotes fields (it replaces commas in values), so a plain split is exact.
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t comma = line.find(',', start);
    if (comma == std::string::npos) {
      out.push_back(line.substr(start));
      break;
    }
    out.push_back(line.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

int to_int(const std::string& s, const std::string& what) {
  try {
    size_t used = 0;
    int v = std::stoi(s, &used);
    if (used != s.size()) throw std::invalid_argument(s);
    return v;
  } catch (const std::exception&) {
    throw std::runtime_error("show servers state: column " + what + " is not a number: '" + s + "'");
  }
}

// Names that go into a runtime API command: no separators HAProxy would interpret (';', spaces,
// newlines), so an option value can never smuggle in a second command.
bool valid_name(const std::string& s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '-' || c == '.' || c == ':';
  });
}

// Answers that mean HAProxy refused the command, whatever the command was.
bool looks_like_refusal(const std::string& answer) {
  static const char* const kPrefixes[] = {"Unknown command", "Permission denied", "No such",
                                          "Require ",        "'set server",       "Can't ",
                                          "Invalid",         "Missing"};
  for (const char* p : kPrefixes)
    if (answer.rfind(p, 0) == 0) return true;
  return false;
}

std::string first_line(const std::string& s) {
  auto nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

}  // namespace

HaproxyError::HaproxyError(const std::string& socket_path, const std::string& command,
                           const std::string& what)
    : std::runtime_error("HAProxy runtime API at " + socket_path + ", command '" + command +
                         "': " + what),
      socket_path_(socket_path),
      command_(command) {}

std::string_view to_string(AdminState s) {
  switch (s) {
    case AdminState::kReady:
      return "ready";
    case AdminState::kDrain:
      return "drain";
    case AdminState::kMaint:
      return "maint";
  }
  return "?";
}

std::optional<AdminState> parse_admin_state(std::string_view text) {
  std::string t = lower(text);
  if (t == "ready") return AdminState::kReady;
  if (t == "drain") return AdminState::kDrain;
  if (t == "maint") return AdminState::kMaint;
  return std::nullopt;
}

std::string ServerState::describe() const {
  if (in_maintenance()) return "MAINT";
  if (draining()) return running() ? "DRAIN" : "DRAIN (DOWN)";
  switch (op_state) {
    case kOpRunning:
      return weight > 0 ? "UP" : "UP (weight 0)";
    case kOpStarting:
      return "STARTING";
    case kOpStopping:
      return "STOPPING";
    default:
      return "DOWN";
  }
}

std::vector<ServerState> parse_servers_state(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  std::vector<std::string> columns;
  std::vector<ServerState> out;
  bool version_seen = false;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    if (!version_seen) {
      if (line != "1")
        throw std::runtime_error("show servers state: unsupported format version '" + line +
                                 "' (expected 1)");
      version_seen = true;
      continue;
    }
    if (line[0] == '#') {
      columns = split_ws(line.substr(1));
      continue;
    }
    if (columns.empty()) throw std::runtime_error("show servers state: data line before header");
    auto values = split_ws(line);
    if (values.size() < columns.size())
      throw std::runtime_error("show servers state: line has " + std::to_string(values.size()) +
                               " fields, header has " + std::to_string(columns.size()) + ": " +
                               line);
    ServerState s;
    for (size_t i = 0; i < columns.size(); ++i) s.fields[columns[i]] = values[i];
    auto need = [&](const char* name) -> const std::string& {
      auto it = s.fields.find(name);
      if (it == s.fields.end())
        throw std::runtime_error(std::string("show servers state: no column ") + name);
      return it->second;
    };
    s.backend = need("be_name");
    s.server = need("srv_name");
    s.address = need("srv_addr");
    s.op_state = to_int(need("srv_op_state"), "srv_op_state");
    s.admin_state = to_int(need("srv_admin_state"), "srv_admin_state");
    s.weight = to_int(need("srv_uweight"), "srv_uweight");
    s.check_health = to_int(need("srv_check_health"), "srv_check_health");
    if (auto it = s.fields.find("srv_port"); it != s.fields.end() && it->second != "-")
      s.port = to_int(it->second, "srv_port");
    out.push_back(std::move(s));
  }
  if (!version_seen) throw std::runtime_error("show servers state: empty answer");
  return out;
}

std::vector<StatRow> parse_show_stat(const std::string& csv) {
  std::istringstream in(csv);
  std::string line;
  std::vector<std::string> columns;
  std::vector<StatRow> out;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    if (line.rfind("# ", 0) == 0) {
      columns = split_csv(line.substr(2));
      continue;
    }
    if (columns.empty()) throw std::runtime_error("show stat: data line before the CSV header");
    auto values = split_csv(line);
    StatRow row;
    for (size_t i = 0; i < columns.size() && i < values.size(); ++i) {
      if (!columns[i].empty()) row[columns[i]] = values[i];
    }
    out.push_back(std::move(row));
  }
  if (columns.empty()) throw std::runtime_error("show stat: no CSV header in the answer");
  return out;
}

std::map<std::string, std::string> parse_show_info(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ')) value.erase(value.begin());
    while (!value.empty() && (value.back() == '\r' || value.back() == ' ')) value.pop_back();
    out[line.substr(0, colon)] = value;
  }
  if (out.empty()) throw std::runtime_error("show info: no 'Name: value' lines in the answer");
  return out;
}

FenceStatus parse_fence_status(const std::string& line) {
  FenceStatus out;
  std::map<std::string, std::string> kv;
  for (const auto& tok : split_ws(line)) {
    auto eq = tok.find('=');
    if (eq != std::string::npos) kv[tok.substr(0, eq)] = tok.substr(eq + 1);
  }
  auto need = [&](const char* key) -> const std::string& {
    auto it = kv.find(key);
    if (it == kv.end())
      throw std::runtime_error(std::string("fence status without '") + key + "=': '" + line + "'");
    return it->second;
  };
  auto number = [&](const char* key) -> int64_t {
    const std::string& v = need(key);
    try {
      size_t used = 0;
      int64_t n = std::stoll(v, &used);
      if (used != v.size()) throw std::invalid_argument(v);
      return n;
    } catch (const std::exception&) {
      throw std::runtime_error(std::string("fence status: '") + key + "' is not a number: '" + line +
                               "'");
    }
  };
  out.name = need("name");
  out.fenced = number("fenced") != 0;
  out.held = number("held");
  out.passed = number("passed");
  out.held_ms = number("held_ms");
  if (!need("in_flight").empty() && std::isdigit(static_cast<unsigned char>(need("in_flight")[0])))
    out.in_flight = number("in_flight");
  return out;
}

HaproxyRuntime::HaproxyRuntime(std::string socket_path, std::chrono::milliseconds timeout)
    : socket_path_(std::move(socket_path)), timeout_(timeout) {}

std::string HaproxyRuntime::execute(const std::string& command) const {
  if (command.find_first_of("\n;") != std::string::npos)
    throw HaproxyError(socket_path_, command, "one command at a time (no ';' or newline)");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path_.size() >= sizeof(addr.sun_path))
    throw HaproxyError(socket_path_, command,
                       "socket path longer than " + std::to_string(sizeof(addr.sun_path) - 1) +
                           " bytes (a unix socket limit): use a shorter directory");
  std::memcpy(addr.sun_path, socket_path_.c_str(), socket_path_.size() + 1);

  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw HaproxyError(socket_path_, command, std::string("socket: ") + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int e = errno;
    std::string hint = (e == ENOENT || e == ECONNREFUSED)
                           ? " (is HAProxy running with `stats socket " + socket_path_ +
                                 " level admin` in its global section?)"
                           : (e == EACCES ? " (permission: run as the user owning the socket)" : "");
    throw HaproxyError(socket_path_, command, std::string("cannot connect: ") + std::strerror(e) + hint);
  }
  std::string payload = command + "\n";
  size_t sent = 0;
  while (sent < payload.size()) {
    ssize_t n = ::send(fd, payload.data() + sent, payload.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw HaproxyError(socket_path_, command, std::string("send: ") + std::strerror(errno));
    }
    sent += static_cast<size_t>(n);
  }
  std::string answer;
  auto deadline = std::chrono::steady_clock::now() + timeout_;
  char buf[8192];
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      throw HaproxyError(socket_path_, command,
                         "no complete answer within " + std::to_string(timeout_.count()) + " ms");
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0) {
      if (errno == EINTR) continue;
      throw HaproxyError(socket_path_, command, std::string("poll: ") + std::strerror(errno));
    }
    if (r == 0) continue;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw HaproxyError(socket_path_, command, std::string("recv: ") + std::strerror(errno));
    }
    if (n == 0) break;
    answer.append(buf, static_cast<size_t>(n));
  }
  while (!answer.empty() && answer.back() == '\n') answer.pop_back();
  if (looks_like_refusal(answer))
    throw HaproxyError(socket_path_, command, "HAProxy refused: " + first_line(answer));
  return answer;
}

std::vector<ServerState> HaproxyRuntime::show_servers_state(const std::string& backend) const {
  if (!backend.empty() && !valid_name(backend))
    throw HaproxyError(socket_path_, "show servers state " + backend, "invalid backend name");
  std::string command = backend.empty() ? "show servers state" : "show servers state " + backend;
  std::string answer = execute(command);
  try {
    return parse_servers_state(answer);
  } catch (const std::exception& e) {
    throw HaproxyError(socket_path_, command, e.what());
  }
}

ServerState HaproxyRuntime::server_state(const std::string& backend, const std::string& server) const {
  for (auto& s : show_servers_state(backend)) {
    if (s.server != server) continue;
    for (const auto& row : show_stat()) {
      auto px = row.find("pxname");
      auto sv = row.find("svname");
      if (px == row.end() || sv == row.end() || px->second != backend || sv->second != server)
        continue;
      auto num = [&](const char* name) {
        auto it = row.find(name);
        if (it == row.end() || it->second.empty()) return 0;
        try {
          return std::stoi(it->second);
        } catch (const std::exception&) {
          return 0;
        }
      };
      s.check_rise = num("check_rise");
      s.check_fall = num("check_fall");
    }
    return s;
  }
  throw HaproxyError(socket_path_, "show servers state " + backend,
                     "backend '" + backend + "' has no server '" + server + "'");
}

std::vector<StatRow> HaproxyRuntime::show_stat() const {
  std::string answer = execute("show stat");
  try {
    return parse_show_stat(answer);
  } catch (const std::exception& e) {
    throw HaproxyError(socket_path_, "show stat", e.what());
  }
}

std::map<std::string, std::string> HaproxyRuntime::show_info() const {
  std::string answer = execute("show info");
  try {
    return parse_show_info(answer);
  } catch (const std::exception& e) {
    throw HaproxyError(socket_path_, "show info", e.what());
  }
}

void HaproxyRuntime::set_server_state(const std::string& backend, const std::string& server,
                                      AdminState state) const {
  std::string command =
      "set server " + backend + "/" + server + " state " + std::string(to_string(state));
  if (!valid_name(backend) || !valid_name(server))
    throw HaproxyError(socket_path_, command, "invalid backend or server name");
  std::string answer = execute(command);
  // Success is an empty answer; anything else is HAProxy explaining why it did nothing.
  if (!answer.empty()) throw HaproxyError(socket_path_, command, "HAProxy answered: " + first_line(answer));
}

void HaproxyRuntime::set_weight(const std::string& backend, const std::string& server,
                                const std::string& weight) const {
  std::string command = "set weight " + backend + "/" + server + " " + weight;
  bool weight_ok = !weight.empty() && std::all_of(weight.begin(), weight.end(), [](unsigned char c) {
    return std::isdigit(c) || c == '%';
  });
  if (!valid_name(backend) || !valid_name(server) || !weight_ok)
    throw HaproxyError(socket_path_, command, "invalid backend, server or weight");
  std::string answer = execute(command);
  if (!answer.empty()) throw HaproxyError(socket_path_, command, "HAProxy answered: " + first_line(answer));
}

}  // namespace fhirshift::cutover

namespace fhirshift::cutover {

namespace {

FenceStatus fence_command(const HaproxyRuntime& rt, const std::string& command,
                          const std::string& name) {
  if (!valid_name(name)) throw HaproxyError(rt.socket_path(), command, "invalid fence name");
  std::string answer;
  try {
    answer = rt.execute(command);
  } catch (const HaproxyError& e) {
    if (std::string(e.what()).find("Unknown command") == std::string::npos) throw;
    throw HaproxyError(rt.socket_path(), command,
                       "HAProxy has no write fence: load tools/haproxy/fhirshift_fence.lua "
                       "(`lua-load` in global) and add its frontend lines (docs/cutover.md, "
                       "\"The write fence in your HAProxy\")");
  }
  try {
    return parse_fence_status(first_line(answer));
  } catch (const std::exception& e) {
    throw HaproxyError(rt.socket_path(), command, e.what());
  }
}

}  // namespace

FenceStatus HaproxyRuntime::fence_status(const std::string& name) const {
  return fence_command(*this, "fhirshift fence show " + name, name);
}

FenceStatus HaproxyRuntime::set_fence(const std::string& name, bool on) const {
  FenceStatus s = fence_command(*this, std::string("fhirshift fence ") + (on ? "on " : "off ") + name,
                                name);
  if (s.fenced != on)
    throw HaproxyError(socket_path_, std::string("fhirshift fence ") + (on ? "on " : "off ") + name,
                       "the fence is still " + std::string(s.fenced ? "up" : "down"));
  return s;
}

}  // namespace fhirshift::cutover
