#include "mongo/command_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string_view>

#include "mongo/bson.h"
#include "mongo/client.h"

namespace fhirshift::mongo {
namespace {

constexpr uint32_t kMaxString = 200;
constexpr uint32_t kMaxArray = 50;
constexpr int kMaxDepth = 32;

// A JSON string literal of `s`.
std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

// Copies `from` into `to` with long strings and arrays cut (see the header).
void copy_cut(bson_iter_t* from, bson_t* to, bool is_array, int depth) {
  uint32_t n = 0;
  while (bson_iter_next(from)) {
    const char* key = bson_iter_key(from);
    if (depth == 0 && (std::strcmp(key, "lsid") == 0 || std::strcmp(key, "$clusterTime") == 0)) continue;
    if (is_array && n >= kMaxArray) {
      BSON_APPEND_UTF8(to, "cut", "more elements not logged");
      break;
    }
    ++n;
    if (BSON_ITER_HOLDS_UTF8(from)) {
      uint32_t len = 0;
      const char* s = bson_iter_utf8(from, &len);
      if (len > kMaxString) {
        std::string cut = std::string(s, kMaxString) + "...(" + std::to_string(len) + " bytes)";
        bson_append_utf8(to, key, -1, cut.c_str(), static_cast<int>(cut.size()));
        continue;
      }
    } else if ((BSON_ITER_HOLDS_DOCUMENT(from) || BSON_ITER_HOLDS_ARRAY(from)) && depth < kMaxDepth) {
      bool array = BSON_ITER_HOLDS_ARRAY(from);
      bson_iter_t child;
      bson_t sub;
      bson_iter_recurse(from, &child);
      if (array)
        bson_append_array_begin(to, key, -1, &sub);
      else
        bson_append_document_begin(to, key, -1, &sub);
      copy_cut(&child, &sub, array, depth + 1);
      if (array)
        bson_append_array_end(to, &sub);
      else
        bson_append_document_end(to, &sub);
      continue;
    }
    bson_append_iter(to, key, -1, from);
  }
}

class LogFile {
 public:
  explicit LogFile(const char* path) : path_(path) {
    fd_ = ::open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0)
      throw std::runtime_error(std::string("cannot open the command log ") + path + " (" +
                               CommandLog::kEnvironmentVariable + "): " + std::strerror(errno));
  }
  // One write() per line: lines of several processes appending to one file do not interleave.
  void write_line(std::string line) {
    line += '\n';
    std::lock_guard lock(mutex_);
    size_t done = 0;
    while (done < line.size()) {
      ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
      if (n <= 0) return;  // an audit log must not take the process down
      done += static_cast<size_t>(n);
    }
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
  std::mutex mutex_;
};

LogFile* log_file() {
  static LogFile* file = [] () -> LogFile* {
    const char* path = std::getenv(CommandLog::kEnvironmentVariable);
    if (!path || !*path) return nullptr;
    return new LogFile(path);  // lives as long as the process: callbacks may run until exit
  }();
  return file;
}

struct PoolContext {
  std::string name;
};

void on_started(const mongoc_apm_command_started_t* event) {
  LogFile* file = log_file();
  if (!file) return;
  auto* context = static_cast<PoolContext*>(mongoc_apm_command_started_get_context(event));
  const bson_t* command = mongoc_apm_command_started_get_command(event);
  const char* name = mongoc_apm_command_started_get_command_name(event);
  const char* db = mongoc_apm_command_started_get_database_name(event);
  std::string collection;
  bson_iter_t it;
  if (bson_iter_init(&it, command) && bson_iter_next(&it) && BSON_ITER_HOLDS_UTF8(&it))
    collection = bson_iter_utf8(&it, nullptr);
  bson_t cut;
  bson_init(&cut);
  if (bson_iter_init(&it, command)) copy_cut(&it, &cut, false, 0);
  std::string doc = to_json(&cut);
  bson_destroy(&cut);
  file->write_line("{\"event\":\"command\",\"pool\":" + quoted(context ? context->name : "") +
                   ",\"command\":" + quoted(name ? name : "") + ",\"db\":" + quoted(db ? db : "") +
                   ",\"collection\":" + quoted(collection) + ",\"doc\":" + doc + "}");
}

}  // namespace

void CommandLog::attach_from_environment(mongoc_client_pool_t* pool, const std::string& pool_name,
                                         const Uri& uri) {
  LogFile* file = log_file();
  if (!file) return;
  auto* context = new PoolContext{pool_name};  // kept for the callbacks of the pool's lifetime
  mongoc_apm_callbacks_t* callbacks = mongoc_apm_callbacks_new();
  mongoc_apm_set_command_started_cb(callbacks, on_started);
  bool ok = mongoc_client_pool_set_apm_callbacks(pool, callbacks, context);
  mongoc_apm_callbacks_destroy(callbacks);
  if (!ok) throw std::logic_error("command log: APM callbacks set after a client was popped");
  file->write_line("{\"event\":\"pool\",\"pool\":" + quoted(pool_name) + ",\"hosts\":" + quoted(uri.hosts()) +
                   ",\"retryWrites\":" + (uri.retry_writes() ? "true" : "false") +
                   ",\"writeConcern\":" + uri.write_concern_json() +
                   ",\"readConcern\":" + quoted(uri.read_concern_level()) + "}");
}

}  // namespace fhirshift::mongo
