// The migrator dashboard's server side: the history ring, its recorder thread, the routes and the
// embedded pages.
#include "dashboard/history.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>

#include "dashboard/pages.h"
#include "dashboard/routes.h"

namespace fhirshift::dashboard {
namespace {

using namespace std::chrono_literals;

Sample at(int64_t ms, int64_t read) {
  return Sample{ms, read, read / 2, 0.5, 1, 2};
}

TEST(ProgressHistory, KeepsTheNewestSamplesOldestFirstOnceFull) {
  ProgressHistory h(3);
  for (int i = 1; i <= 5; ++i) h.record(at(i * 1000, i * 10));
  auto s = h.samples();
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].at_ms, 3000);
  EXPECT_EQ(s[1].at_ms, 4000);
  EXPECT_EQ(s[2].at_ms, 5000);
  EXPECT_EQ(s[2].read, 50);
}

TEST(ProgressHistory, SinceReturnsOnlyNewerSamples) {
  ProgressHistory h(10);
  for (int i = 1; i <= 4; ++i) h.record(at(i * 1000, i));
  EXPECT_EQ(h.samples(2000).size(), 2u);
  EXPECT_EQ(h.samples(4000).size(), 0u);
  auto j = nlohmann::json::parse(h.to_json(3000));
  EXPECT_EQ(j["capacity"], 10);
  ASSERT_EQ(j["samples"].size(), 1u);
  EXPECT_EQ(j["samples"][0]["t"], 4000);
  EXPECT_EQ(j["samples"][0]["read"], 4);
  EXPECT_EQ(j["samples"][0]["written"], 2);
  EXPECT_EQ(j["samples"][0]["lag"], 0.5);
  EXPECT_EQ(j["samples"][0]["quarantined"], 1);
  EXPECT_EQ(j["samples"][0]["conflicts"], 2);
}

TEST(ProgressHistory, ZeroCapacityIsRefused) {
  EXPECT_THROW(ProgressHistory(0), std::invalid_argument);
}

TEST(HistoryRecorder, SamplesAtOnceAndPeriodicallyWithWallClockTimes) {
  ProgressHistory h(100);
  std::atomic<int64_t> read{0};
  auto now_ms = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  int64_t before = now_ms();
  {
    HistoryRecorder r(
        h, [&] { return Sample{0, read.fetch_add(1) + 1, 0, 0, 0, 0}; }, 20ms);
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (h.samples().size() < 3 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(5ms);
  }
  auto s = h.samples();
  ASSERT_GE(s.size(), 3u);
  EXPECT_EQ(s[0].read, 1);
  EXPECT_GE(s[0].at_ms, before);
  for (size_t i = 1; i < s.size(); ++i) EXPECT_GE(s[i].at_ms, s[i - 1].at_ms);
  // Destruction stopped the thread: no sample after it.
  size_t n = s.size();
  std::this_thread::sleep_for(60ms);
  EXPECT_EQ(h.samples().size(), n);
}

TEST(DashboardRoutes, ServeThePageAndTheHistory) {
  ProgressHistory h(10);
  h.record(at(1000, 5));
  h.record(at(2000, 9));
  httplib::Server server;
  add_migrate_routes(server, h);
  int port = server.bind_to_any_port("127.0.0.1");
  ASSERT_GT(port, 0);
  std::thread t([&] { server.listen_after_bind(); });
  httplib::Client c("127.0.0.1", port);
  auto page = c.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(page->body, std::string(migrate_page()));
  auto all = c.Get("/progress/history");
  ASSERT_TRUE(all);
  EXPECT_EQ(nlohmann::json::parse(all->body)["samples"].size(), 2u);
  EXPECT_EQ(all->get_header_value("Connection"), "close");
  auto newer = c.Get("/progress/history?since=1000");
  ASSERT_TRUE(newer);
  EXPECT_EQ(nlohmann::json::parse(newer->body)["samples"].size(), 1u);
  auto bad = c.Get("/progress/history?since=yesterday");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  server.stop();
  t.join();
}

// The pages are whole documents that fetch nothing but their own JSON: no CDN, no external script.
TEST(DashboardPages, AreSelfContained) {
  for (std::string_view page : {migrate_page(), cutover_page()}) {
    std::string p(page);
    EXPECT_EQ(p.rfind("<!doctype html>", 0), 0u);
    EXPECT_NE(p.find("</html>"), std::string::npos);
    EXPECT_EQ(p.find("http://"), std::string::npos);
    EXPECT_EQ(p.find("https://"), std::string::npos);
    EXPECT_EQ(p.find("<script src"), std::string::npos);
    EXPECT_EQ(p.find("<link"), std::string::npos);
  }
  EXPECT_NE(std::string(migrate_page()).find("fetch(path"), std::string::npos);
  EXPECT_NE(std::string(cutover_page()).find("/report.json"), std::string::npos);
}

}  // namespace
}  // namespace fhirshift::dashboard
