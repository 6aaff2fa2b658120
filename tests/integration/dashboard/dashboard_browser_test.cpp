// The operator's pages in a real browser (headless Debian chromium): the migrator's dashboard over
// a live migration on embedded FerretDB, and the cut-over's live report over a real HAProxy.
// Screenshots are saved under <build>/test-artifacts/dashboard/.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <nlohmann/json.hpp>
#include <regex>

#include "chromium.h"
#include "haproxy_fixture.h"
#include "migrate_fixture.h"
#include "ports.h"

namespace fhirshift::testing {
namespace {

using namespace std::chrono_literals;

const std::filesystem::path kArtifacts =
    std::filesystem::path(FHIRSHIFT_TEST_ARTIFACTS_DIR) / "dashboard";

std::string with_commas(int64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// GET `path` as JSON; null when the server does not answer 200.
nlohmann::json get_json(int port, const std::string& path) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(5s);
  auto r = c.Get(path);
  if (!r || r->status != 200) return nullptr;
  return nlohmann::json::parse(r->body);
}

// Polls until `done(json)` or `timeout`; returns the last document read.
template <typename Pred>
nlohmann::json wait_json(int port, const std::string& path, std::chrono::seconds timeout,
                         Pred done) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  nlohmann::json j;
  while (std::chrono::steady_clock::now() < deadline) {
    j = get_json(port, path);
    if (!j.is_null() && done(j)) return j;
    std::this_thread::sleep_for(100ms);
  }
  return j;
}

class DashboardBrowserTest : public MigrateFixture {};

TEST_F(DashboardBrowserTest, TheMigratorsPageReachesOneHundredPercentInABrowser) {
  ASSERT_FALSE(chromium_binary().empty())
      << "chromium is not installed: apt-get install -y chromium";
  seed(1500);
  int port = free_port();
  // Continuous: the migrator keeps serving its page after the initial copy (an AdHoc run exits).
  Subprocess migrator(
      migrate_args("Continuous", {"--metrics-port", std::to_string(port), "--pollInterval", "500ms",
                                  "--mongoBatch", "100"}),
      logs_.path(), "migrate");
  ASSERT_FALSE(
      wait_json(port, "/progress", 60s, [](const nlohmann::json&) { return true; }).is_null())
      << migrator.stderr_text();
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/";

  // A browser that opened the page while the copy runs sees it reach 100 % (the page puts the
  // bar's percentage first in its title).
  {
    LiveChromium browser(url);
    auto deadline = std::chrono::steady_clock::now() + 150s;
    std::string title;
    while (std::chrono::steady_clock::now() < deadline && title.rfind("100%", 0) != 0) {
      title = browser.title();
      std::this_thread::sleep_for(200ms);
    }
    ASSERT_EQ(title.rfind("100%", 0), 0u) << "last title: '" << title << "'\n"
                                          << migrator.stderr_text();
  }

  nlohmann::json p = wait_json(port, "/progress", 60s,
                               [](const nlohmann::json& j) { return j["caughtUp"] == true; });
  ASSERT_EQ(p["caughtUp"], true) << p.dump() << migrator.stderr_text();
  // A page opened now draws the last minutes from the server's history.
  nlohmann::json h = wait_json(port, "/progress/history", 30s,
                               [](const nlohmann::json& j) { return j["samples"].size() >= 3; });
  ASSERT_GE(h["samples"].size(), 3u) << h.dump();

  std::string dom = chromium_dump_dom(url, 3000ms);
  EXPECT_NE(dom.find("data-percent=\"100\""), std::string::npos) << dom;
  EXPECT_NE(dom.find("aria-valuenow=\"100\""), std::string::npos) << dom;
  EXPECT_NE(dom.find("caught up: lag "), std::string::npos) << dom;
  EXPECT_NE(dom.find(with_commas(p["entriesRead"].get<int64_t>()) + " / ~"), std::string::npos)
      << dom;
  std::smatch m;
  ASSERT_TRUE(
      std::regex_search(dom, m, std::regex("id=\"chart-rate\"[^>]*data-samples=\"([0-9]+)\"")))
      << dom;
  EXPECT_GE(std::stoi(m[1].str()), 3) << "the page opened late did not get the history";
  // The throughput line has points.
  EXPECT_TRUE(std::regex_search(dom, std::regex("id=\"line-read\"[^>]*points=\"[0-9.]+,[0-9.]+ ")))
      << dom;
  EXPECT_NE(dom.find("<h2 id=\"h-problems\">Quarantined <span id=\"quarantined\">0</span>"),
            std::string::npos)
      << dom;

  std::string error;
  EXPECT_TRUE(chromium_screenshot(url, 3000ms, kArtifacts / "migrate.png", error)) << error;

  EXPECT_EQ(migrator.stop(), 0) << migrator.stderr_text();
  expect_faithful_copy();
}

// The cut-over waits in its drain (the stand-in migrator stopped polling) with writes held, long
// enough to look at the page; then Ctrl-C aborts it safely and the page's JSON shows the end.
TEST(CutoverReportPage, ShowsTheStepsLiveAndTheOutcome) {
  ASSERT_FALSE(chromium_binary().empty())
      << "chromium is not installed: apt-get install -y chromium";
  TinyFhirServer old_server("old"), new_server("new");
  HaproxyProcess proxy(old_server.addr(), new_server.addr());
  ASSERT_TRUE(proxy.wait_until_up("old", 10s));
  FakeMigratorProgress migrator;
  migrator.set_frozen(true);
  TempDir dir("fhirshift-cutover-page");
  int port = free_port();
  Subprocess cut({cli_path(), "cutover", "--new-url", new_server.url(), "--proxy-socket",
                  proxy.socket(), "--metrics", migrator.url(), "--no-verify", "--report-port",
                  std::to_string(port), "--drain-timeout", "120s", "--max-pause", "120s"},
                 dir.path(), "cutover");
  // The step is logged just before the page's report hears of it.
  nlohmann::json live = wait_json(port, "/report.json", 60s, [](const nlohmann::json& j) {
    return j["steps"].size() == 9 && j["steps"][5]["state"] == "running";
  });
  ASSERT_FALSE(live.is_null()) << cut.stderr_text();
  EXPECT_EQ(live["running"], true);
  EXPECT_TRUE(live["outcome"].is_null());
  ASSERT_EQ(live["steps"].size(), 9u) << live.dump(2);
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(live["steps"][i]["state"], i == 3 ? "skipped" : "ok") << live.dump(2);
  EXPECT_EQ(live["steps"][5]["state"], "running");
  EXPECT_EQ(live["steps"][5]["name"], "drain the migrator");
  for (int i = 6; i < 9; ++i) EXPECT_EQ(live["steps"][i]["state"], "waiting");
  EXPECT_EQ(live["writePause"]["state"], "held");
  EXPECT_EQ(live["writePause"]["budgetMs"], 120000);

  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/";
  std::string dom = chromium_dump_dom(url, 2000ms);
  EXPECT_NE(dom.find("<li class=\"step\" data-state=\"ok\" data-step=\"5\">"), std::string::npos)
      << dom;
  EXPECT_NE(dom.find("<li class=\"step\" data-state=\"running\" data-step=\"6\">"),
            std::string::npos)
      << dom;
  EXPECT_NE(dom.find("<li class=\"step\" data-state=\"waiting\" data-step=\"9\">"),
            std::string::npos)
      << dom;
  EXPECT_NE(dom.find("running: step 6/9 drain the migrator"), std::string::npos) << dom;
  EXPECT_NE(dom.find("data-state=\"held\""), std::string::npos) << dom;
  EXPECT_NE(dom.find("writes held for "), std::string::npos) << dom;
  std::string error;
  EXPECT_TRUE(chromium_screenshot(url, 2000ms, kArtifacts / "cutover.png", error)) << error;

  // Ctrl-C: the machine aborts safely; the server keeps answering until the final state was read.
  cut.signal(SIGINT);
  nlohmann::json end = wait_json(port, "/report.json", 60s,
                                 [](const nlohmann::json& j) { return j["running"] == false; });
  ASSERT_FALSE(end.is_null()) << cut.stdout_text() << cut.stderr_text();
  EXPECT_EQ(end["outcome"], "ABORTED SAFELY") << end.dump(2);
  EXPECT_EQ(end["trafficOn"], "old");
  EXPECT_EQ(end["steps"][5]["state"], "failed");
  EXPECT_NE(end["steps"][5]["detail"].get<std::string>().find("interrupted"), std::string::npos)
      << end.dump(2);
  for (int i = 6; i < 9; ++i) EXPECT_EQ(end["steps"][i]["state"], "not run");
  EXPECT_EQ(end["writePause"]["state"], "lifted");
  auto rc = cut.wait_for(30s);
  ASSERT_TRUE(rc.has_value());
  EXPECT_EQ(*rc, 1) << cut.stdout_text() << cut.stderr_text();
}

}  // namespace
}  // namespace fhirshift::testing
