// docs/runbook.md's "Coming from the legacy tool" section, pasted as an operator pastes it: every
// command of its `sh` blocks runs through bash exactly as printed, with only the variables of the
// section's conventions block (set to a live FerretDB) and the program (`fhirshift` on PATH is the
// binary just built) supplied. A change of the CLI or of that page that breaks a pasted line fails
// here.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "ferretdb_server.h"
#include "mongo/client.h"
#include "mongo/collection.h"
#include "schema/entry.h"
#include "schema/layout.h"
#include "subprocess.h"
#include "temp_dir.h"

namespace fhirshift {
namespace {

using namespace std::chrono_literals;

constexpr const char* kSectionHeading = "coming from the legacy tool";
// What the Continuous migrator logs once its initial copy is done and a poll found nothing new.
constexpr const char* kCompletionLine = "No new items found in the database. Waiting for";

std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The commands of the `sh` blocks of the "## ..." section whose heading contains `heading`, each
// as printed (continuation lines included). Comment lines and the conventions block's variable
// assignments are not commands: the test supplies the variables itself.
std::vector<std::string> section_commands(const std::string& markdown, const std::string& heading) {
  std::istringstream in(markdown);
  std::string line, command;
  std::vector<std::string> commands;
  bool in_section = false, in_sh = false, found = false;
  const std::regex assignment("^[A-Za-z_][A-Za-z0-9_]*=.*");
  while (std::getline(in, line)) {
    if (!in_sh && line.rfind("## ", 0) == 0) {
      in_section = lower(line).find(heading) != std::string::npos;
      found = found || in_section;
      continue;
    }
    if (!in_section) continue;
    if (line.rfind("```", 0) == 0) {
      in_sh = !in_sh && line == "```sh";
      continue;
    }
    if (!in_sh) continue;
    if (!command.empty()) {
      command += "\n" + line;
    } else {
      std::string trimmed = line.substr(std::min(line.size(), line.find_first_not_of(" \t")));
      if (trimmed.empty() || trimmed[0] == '#' || std::regex_match(trimmed, assignment)) continue;
      command = line;
    }
    if (command.back() != '\\') {
      commands.push_back(command);
      command.clear();
    }
  }
  EXPECT_TRUE(found) << "docs/runbook.md has no '## ' heading containing '" << heading << "'";
  return commands;
}

enum class Kind {
  kMkdir,
  kProvisionByEmptyImport,
  kMigrateAdHoc,
  kMigrateContinuous,
  kVerifyCounts,
  kUnknown
};

Kind kind_of(const std::string& command) {
  auto has = [&](const char* s) { return command.find(s) != std::string::npos; };
  if (command.rfind("mkdir ", 0) == 0) return Kind::kMkdir;
  if (command.rfind("fhirshift migrate ", 0) == 0) {
    if (has("--srcMongoRunningMode AdHoc")) return Kind::kMigrateAdHoc;
    if (has("--srcMongoRunningMode Continuous")) return Kind::kMigrateContinuous;
    if (has("--source ") && has("--provisionTargetDatabase true"))
      return Kind::kProvisionByEmptyImport;
  }
  if (command.rfind("fhirshift verify ", 0) == 0 && has("--mode counts"))
    return Kind::kVerifyCounts;
  return Kind::kUnknown;
}

class RunbookTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // `fhirshift` as the operator types it: the built binary, first on PATH.
    std::filesystem::create_directories(bin_.path());
    std::filesystem::create_symlink(testing::cli_path(), bin_.path() / "fhirshift");
    const char* path = std::getenv("PATH");
    std::ofstream(work_.path() / "license.json") << "{}\n";
    env_ = {{"PATH", bin_.path().string() + ":" + (path ? path : "/usr/bin:/bin")},
            {"CONNECTION_STRING", db_.uri("newstore")},
            {"SRC_CONNECTION_STRING", db_.uri("legacystore")},
            {"LICENSE_FILE", (work_.path() / "license.json").string()},
            {"JOURNAL_DIR", (work_.path() / "journal").string()}};
  }

  // Runs `command` through bash in the work directory, as pasted into a terminal.
  std::unique_ptr<testing::Subprocess> start(const std::string& command) {
    return std::make_unique<testing::Subprocess>(
        std::vector<std::string>{"/bin/bash", "-c", command}, logs_.path(),
        "step" + std::to_string(++steps_), env_, work_.path());
  }

  // Entries (documents with a `type`) in the legacy or the new store.
  int64_t entries(const std::string& database) {
    mongo::ClientPool pool(mongo::Uri::parse(db_.uri(database)));
    mongo::Client c = pool.acquire();
    mongo::Builder f;
    f.document("type", [](mongo::Builder& d) { d.append("$exists", true); });
    return c.collection(database, "vonkentries").count(f.extract().get());
  }

  // A new resource written to the legacy store as the old server writes a create.
  void legacy_create(const std::string& id) {
    mongo::ClientPool pool(mongo::Uri::parse(db_.uri("legacystore")));
    mongo::Client c = pool.acquire();
    schema::Entry e;
    bson_oid_init(&e.id, nullptr);
    e.im = schema::kInfoModelR4;
    e.type = "Patient";
    e.res_id = id;
    e.v = "1";
    e.lu_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
    e.cur = true;
    e.json = R"({"resourceType":"Patient","id":")" + id +
             R"(","meta":{"versionId":"1"},"name":[{"family":"Late"}]})";
    c.collection("legacystore", "vonkentries").insert_one(schema::encode_legacy(e).get());
  }

  testing::FerretDbServer db_;
  testing::TempDir bin_{"fhirshift-runbook-bin"};
  testing::TempDir work_{"fhirshift-runbook-work"};
  testing::TempDir logs_{"fhirshift-runbook-logs"};
  std::map<std::string, std::string> env_;
  int steps_ = 0;
};

TEST_F(RunbookTest, EveryLineOfTheLegacyToolSectionRunsAsPrinted) {
  const std::vector<std::string> commands = section_commands(
      read_text(std::filesystem::path(FHIRSHIFT_SOURCE_DIR) / "docs" / "runbook.md"),
      kSectionHeading);
  std::vector<Kind> kinds;
  for (const auto& command : commands) {
    kinds.push_back(kind_of(command));
    EXPECT_NE(kinds.back(), Kind::kUnknown)
        << "runbook_test does not know what to expect of this line; teach it:\n"
        << command;
    // Every variable a line uses is one the test supplies (bash would expand any other to "").
    static const std::regex variable(R"(\$\{?([A-Za-z_][A-Za-z0-9_]*))");
    for (std::sregex_iterator it(command.begin(), command.end(), variable), end; it != end; ++it)
      EXPECT_TRUE(env_.count((*it)[1].str()))
          << "$" << (*it)[1].str() << " is not one of the section's variables:\n"
          << command;
  }
  // The legacy runbook's order: provision by an empty import, copy once, follow, compare counts.
  ASSERT_EQ(kinds,
            (std::vector<Kind>{Kind::kMkdir, Kind::kProvisionByEmptyImport, Kind::kMigrateAdHoc,
                               Kind::kMigrateContinuous, Kind::kVerifyCounts}))
      << "the section's commands changed; found " << commands.size();

  testing::RunResult seeded =
      testing::run_command({testing::cli_path(), "seed", "--mongoConnectionstring",
                            db_.uri("legacystore"), "--entries", "300"},
                           5min);
  ASSERT_EQ(seeded.exit_code, 0) << seeded.err;
  const int64_t seeded_entries = entries("legacystore");
  ASSERT_GE(seeded_entries, 300);

  auto run = [&](const std::string& command, std::chrono::minutes timeout) {
    auto p = start(command);
    std::optional<int> rc = p->wait_for(timeout);
    EXPECT_TRUE(rc.has_value()) << "still running after " << timeout.count() << " min:\n"
                                << command;
    if (!rc) p->kill9();
    return std::tuple{rc.value_or(-1), p->stdout_text(), p->stderr_text()};
  };

  {
    SCOPED_TRACE(commands[0]);
    auto [rc, out, err] = run(commands[0], 1min);
    ASSERT_EQ(rc, 0) << err;
    EXPECT_TRUE(std::filesystem::is_directory(work_.path() / "empty_dir"));
  }
  {
    SCOPED_TRACE(commands[1]);
    auto [rc, out, err] = run(commands[1], 5min);
    ASSERT_EQ(rc, 0) << out << err;
    EXPECT_NE(out.find("nothing to import; the target is provisioned"), std::string::npos)
        << out << err;
    EXPECT_NE(err.find("--license " + env_["LICENSE_FILE"] +
                       ": accepted from the legacy tool's runbook and ignored"),
              std::string::npos)
        << err;
    mongo::ClientPool pool(mongo::Uri::parse(db_.uri("newstore")));
    mongo::Client c = pool.acquire();
    mongo::Builder f;
    f.append("_id", schema::kSystemDocumentId);
    auto system = c.collection("newstore", "vonkentries").find_one(f.extract().get());
    ASSERT_TRUE(system.has_value()) << "no system document: the target was not provisioned";
    EXPECT_EQ(mongo::View(system->get()).integer("schemaVersion"), schema::kCurrentSchemaVersion);
    EXPECT_EQ(entries("newstore"), 0);
  }
  {
    SCOPED_TRACE(commands[2]);
    auto [rc, out, err] = run(commands[2], 10min);
    ASSERT_EQ(rc, 0) << out << err;
    EXPECT_EQ(entries("newstore"), seeded_entries);
  }
  {
    // The old server keeps writing; the Continuous run resumes from the AdHoc run's journal and
    // copies what is new before it reports that it found nothing more.
    SCOPED_TRACE(commands[3]);
    for (const char* id : {"late-1", "late-2", "late-3"}) legacy_create(id);
    auto p = start(commands[3]);
    ASSERT_TRUE(p->wait_for_output(kCompletionLine, 10min)) << p->stdout_text() << p->stderr_text();
    p->signal(SIGTERM);
    std::optional<int> rc = p->wait_for(2min);
    ASSERT_TRUE(rc.has_value()) << "did not stop on SIGTERM";
    EXPECT_EQ(*rc, 0) << p->stderr_text();
    EXPECT_EQ(entries("newstore"), seeded_entries + 3);
  }
  {
    SCOPED_TRACE(commands[4]);
    auto [rc, out, err] = run(commands[4], 5min);
    EXPECT_EQ(rc, 0) << out << err;
    EXPECT_NE(out.find("EQUAL"), std::string::npos) << out;
    EXPECT_EQ(out.find("DIFFERENT"), std::string::npos) << out;
  }
}

}  // namespace
}  // namespace fhirshift
