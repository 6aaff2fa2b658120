// Each rule of the command audit (tests/support/command_audit.h) accepts a good command and rejects
// a bad one; the lines are the command log's own format (src/mongo/command_log.h).
#include "command_audit.h"

#include <gtest/gtest.h>

#include <string>

namespace fhirshift::testing {
namespace {

const std::string kWc = R"("writeConcern":{"w":"majority","j":true})";
const std::string kKey =
    R"("_id":{"$oid":"65a1b2c3d4e5f60718293a4b"},"type":"Patient","im":"Fhir4.0","cur":true,"cnt":false,"change":"u","res_id":"p1")";

std::string command(const std::string& pool, const std::string& name, const std::string& doc) {
  return R"({"event":"command","pool":")" + pool + R"(","command":")" + name +
         R"(","db":"vonkdata","collection":"vonkentries","doc":)" + doc + "}";
}

std::string update(const std::string& statement, const std::string& wc = kWc) {
  return command("fhirshift-migrate-target", "update",
                 R"({"update":"vonkentries","ordered":false,)" + wc + R"(,"updates":[)" + statement + "]}");
}

std::vector<AuditViolation> check_lines(const std::vector<std::string>& lines) {
  CommandAudit audit;
  for (const auto& l : lines) audit.add_line(l);
  return audit.check();
}

bool has_rule(const std::vector<AuditViolation>& v, const std::string& rule) {
  for (const auto& x : v)
    if (x.rule == rule) return true;
  return false;
}

TEST(CommandAudit, AFlipWithIdAndTheFullShardKeyPasses) {
  auto v = check_lines({update(R"({"q":{)" + kKey + R"(},"u":{"$set":{"cur":false},"$unset":{"idx":""}}})")});
  EXPECT_TRUE(v.empty()) << describe(v);
}

TEST(CommandAudit, AFlipByIdAloneIsRejected) {
  auto v = check_lines({update(R"({"q":{"_id":{"$oid":"65a1b2c3d4e5f60718293a4b"}},"u":{"$set":{"cur":false}}})")});
  ASSERT_TRUE(has_rule(v, "shard-key-update")) << describe(v);
  EXPECT_NE(v[0].message.find("type im cur cnt change res_id"), std::string::npos) << v[0].message;
}

TEST(CommandAudit, AFlipWithAnOperatorInsteadOfAnEqualityIsRejected) {
  std::string key = kKey;
  key.replace(key.find(R"("cnt":false)"), 11, R"("cnt":{"$ne":true})");
  auto v = check_lines({update(R"({"q":{)" + key + R"(},"u":{"$set":{"cur":false}}})")});
  EXPECT_TRUE(has_rule(v, "shard-key-update")) << describe(v);
}

TEST(CommandAudit, AReplacementHoldingCurNeedsTheFullKeyToo) {
  std::string doc = R"({"_id":{"$oid":"65a1b2c3d4e5f60718293a4b"},"type":"Patient","cur":true})";
  auto good = check_lines({update(R"({"q":{)" + kKey + R"(},"u":)" + doc + R"(,"upsert":true})")});
  EXPECT_TRUE(good.empty()) << describe(good);
  auto bad = check_lines({update(R"({"q":{"_id":{"$oid":"65a1b2c3d4e5f60718293a4b"}},"u":)" + doc + R"(,"upsert":true})")});
  EXPECT_TRUE(has_rule(bad, "shard-key-update")) << describe(bad);
}

TEST(CommandAudit, AnUpdateThatLeavesCurAloneNeedsNoShardKey) {
  auto v = check_lines({update(R"({"q":{"_id":{"$oid":"65a1b2c3d4e5f60718293a4b"}},"u":{"$set":{"reason":"x"}},"upsert":true})")});
  EXPECT_TRUE(v.empty()) << describe(v);
}

TEST(CommandAudit, AMultiDocumentUpdateThatChangesCurIsRejected) {
  auto v = check_lines({update(R"({"q":{)" + kKey + R"(},"u":{"$set":{"cur":false}},"multi":true})")});
  EXPECT_TRUE(has_rule(v, "shard-key-update")) << describe(v);
  EXPECT_TRUE(has_rule(v, "multi-update")) << describe(v);
}

TEST(CommandAudit, AMultiDocumentUpdateFilteringOnAShardKeyFieldIsRejected) {
  auto bad = check_lines({update(R"({"q":{"$or":[{"res_id":{"$in":["a","b"]}}]},"u":{"$set":{"note":1}},"multi":true})")});
  EXPECT_TRUE(has_rule(bad, "multi-update")) << describe(bad);
  auto good = check_lines({update(R"({"q":{"reason":"x"},"u":{"$set":{"note":1}},"multi":true})")});
  EXPECT_TRUE(good.empty()) << describe(good);
}

TEST(CommandAudit, WritesWithoutTheExpectedWriteConcernAreRejected) {
  std::string insert_ok = command("fhirshift-serve", "insert",
                                  R"({"insert":"vonkentries",)" + kWc + R"(,"documents":[{"_id":1}]})");
  std::string insert_w1 = command("fhirshift-serve", "insert",
                                  R"({"insert":"vonkentries","writeConcern":{"w":1},"documents":[{"_id":1}]})");
  std::string delete_none = command("fhirshift-verify-target", "delete",
                                    R"({"delete":"vonkentries","deletes":[{"q":{"_id":1},"limit":1}]})");
  EXPECT_TRUE(check_lines({insert_ok}).empty());
  EXPECT_TRUE(has_rule(check_lines({insert_w1}), "write-concern"));
  EXPECT_TRUE(has_rule(check_lines({delete_none}), "write-concern"));
  CommandAudit audit;
  audit.add_line(insert_w1);
  AuditExpectations w1;
  w1.write_concern_w = "1";
  w1.journal = false;
  EXPECT_TRUE(audit.check(w1).empty()) << "a connection string's own write concern is accepted when expected";
}

TEST(CommandAudit, SourceReadsWithoutTheReadConcernAreRejected) {
  std::string good = command("fhirshift-migrate-source", "find",
                             R"({"find":"vonkentries","filter":{},"readConcern":{"level":"majority"}})");
  std::string bad = command("fhirshift-migrate-source", "find", R"({"find":"vonkentries","filter":{}})");
  std::string target_read = command("fhirshift-migrate-target", "find", R"({"find":"vonkentries","filter":{}})");
  EXPECT_TRUE(check_lines({good}).empty());
  EXPECT_TRUE(has_rule(check_lines({bad}), "read-concern"));
  EXPECT_TRUE(check_lines({target_read}).empty()) << "the rule is about source reads";
}

TEST(CommandAudit, TheProgressEstimateReadsCollStatsWithLocal) {
  std::string local = command("fhirshift-migrate-source", "aggregate",
                              R"({"aggregate":"vonkentries","pipeline":[{"$collStats":{"count":{}}}],"readConcern":{"level":"local"}})");
  std::string majority = command("fhirshift-migrate-source", "aggregate",
                                 R"({"aggregate":"vonkentries","pipeline":[{"$collStats":{"count":{}}}],"readConcern":{"level":"majority"}})");
  EXPECT_TRUE(check_lines({local}).empty());
  EXPECT_TRUE(has_rule(check_lines({majority}), "read-concern"));
}

TEST(CommandAudit, TheCountCommandIsRejected) {
  std::string count = command("fhirshift-verify-source", "count",
                              R"({"count":"vonkentries","query":{},"readConcern":{"level":"majority"}})");
  std::string count_documents = command(
      "fhirshift-verify-source", "aggregate",
      R"({"aggregate":"vonkentries","pipeline":[{"$match":{}},{"$group":{"_id":1,"n":{"$sum":1}}}],"readConcern":{"level":"majority"}})");
  EXPECT_TRUE(has_rule(check_lines({count}), "no-count"));
  EXPECT_TRUE(check_lines({count_documents}).empty());
}

TEST(CommandAudit, APoolWithoutRetryableWritesIsRejected) {
  std::string on = R"({"event":"pool","pool":"fhirshift-serve","hosts":"h:1","retryWrites":true,"writeConcern":{"w":"majority","j":true},"readConcern":"majority"})";
  std::string off = R"({"event":"pool","pool":"fhirshift-serve","hosts":"h:1","retryWrites":false,"writeConcern":{"w":"majority","j":true},"readConcern":"majority"})";
  EXPECT_TRUE(check_lines({on}).empty());
  EXPECT_TRUE(has_rule(check_lines({off}), "retryable-writes"));
}

TEST(CommandAudit, ALineThatIsNotJsonIsReported) {
  EXPECT_TRUE(has_rule(check_lines({"{\"event\":\"command\",\"po"}), "log-format"));
}

TEST(CommandAudit, CoverageFiguresCountWhatWasRecorded) {
  CommandAudit audit;
  audit.add_line(update(R"({"q":{)" + kKey + R"(},"u":{"$set":{"cur":false}}})"));
  audit.add_line(command("fhirshift-migrate-source", "find", R"({"find":"vonkentries","readConcern":{"level":"majority"}})"));
  EXPECT_EQ(audit.commands(), 2u);
  EXPECT_EQ(audit.count("update"), 1u);
  EXPECT_EQ(audit.cur_updates(), 1u);
  EXPECT_EQ(audit.commands_of("fhirshift-migrate-source"), 1u);
}

}  // namespace
}  // namespace fhirshift::testing
