// The command audit: reads the command log that fhirshift writes with FHIRSHIFT_COMMAND_LOG=<file>
// (src/mongo/command_log.h) and checks every recorded command against the rules that make the
// store correct on replica sets and sharded clusters (docs/testing.md, "Command audit"):
//
//   shard-key-update  an update that sets or unsets `cur` (or a replacement that holds it) is a
//                     single-document update whose filter has `_id` and an equality on every
//                     shard-key field (type, im, cur, cnt, change, res_id)
//   multi-update      no multi-document update filters on a shard-key field
//   write-concern     insert, update, delete and findAndModify carry the expected write concern
//   read-concern      find, aggregate and distinct of a source pool (a pool whose name ends in
//                     "-source") carry the expected read concern; a `$collStats` aggregation (the
//                     progress estimate) must read "local", the only level it takes
//   no-count          no `count` command (it counts orphans on a sharded cluster)
//   retryable-writes  no pool has retryWrites=false
#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace fhirshift::testing {

struct AuditExpectations {
  std::string write_concern_w = "majority";  // "majority", or a number as text ("1")
  bool journal = true;
  std::string read_concern = "majority";
};

struct AuditViolation {
  size_t line = 0;   // 1-based line of the log
  std::string rule;  // one of the names above
  std::string message;
};

class CommandAudit {
 public:
  // Throws std::runtime_error naming the file when it cannot be read.
  static CommandAudit from_file(const std::filesystem::path& path);
  // One line of the log; a line that is not JSON is a violation of rule "log-format".
  void add_line(const std::string& line);

  std::vector<AuditViolation> check(const AuditExpectations& expect = {}) const;

  // Coverage, so that a test can tell that the commands it meant to check were recorded.
  size_t commands() const { return commands_.size(); }
  size_t count(const std::string& command_name) const;
  // Update statements that change `cur`, and those with the full shard key among them.
  size_t cur_updates() const;
  // Commands sent by pools whose name starts with `prefix`.
  size_t commands_of(const std::string& pool_prefix) const;

 private:
  struct Line {
    size_t number;
    std::string text;
  };
  std::vector<Line> commands_;
  std::vector<Line> pools_;
  std::vector<AuditViolation> format_errors_;
  size_t lines_ = 0;
};

// "rule (line N): message" per violation, for test failure messages.
std::string describe(const std::vector<AuditViolation>& violations, size_t at_most = 20);

}  // namespace fhirshift::testing
