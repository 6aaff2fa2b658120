// The runtime API client against a real HAProxy with two small HTTP backends.
#include <gtest/gtest.h>
#include <httplib.h>

#include "cutover/haproxy_runtime.h"
#include "haproxy_fixture.h"

namespace fhirshift::testing {
namespace {

using cutover::AdminState;
using cutover::HaproxyError;
using cutover::HaproxyRuntime;

std::pair<std::string, std::string> whoami(const std::string& url) {
  httplib::Client cli(url);
  auto r = cli.Get("/whoami");
  if (!r) return {"(no answer: " + httplib::to_string(r.error()) + ")", ""};
  if (r->status != 200) return {"(HTTP " + std::to_string(r->status) + ")", ""};
  return {r->body, r->get_header_value("X-Fhirshift-Served-By")};
}

class HaproxyRuntimeTest : public ::testing::Test {
 protected:
  HaproxyRuntimeTest() : old_server("old"), new_server("new"), proxy(old_server.addr(), new_server.addr()) {
    EXPECT_TRUE(proxy.wait_until_up("old", std::chrono::seconds(10)));
  }
  TinyFhirServer old_server, new_server;
  HaproxyProcess proxy;
};

TEST_F(HaproxyRuntimeTest, ShowServersStateParsesTheTemplatesBackend) {
  HaproxyRuntime rt(proxy.socket());
  auto states = rt.show_servers_state("fhir");
  ASSERT_EQ(states.size(), 2u);
  EXPECT_EQ(states[0].server, "old");
  EXPECT_EQ(states[0].port, old_server.port());
  EXPECT_TRUE(states[0].serving()) << states[0].describe();
  EXPECT_EQ(states[1].server, "new");
  EXPECT_TRUE(states[1].in_maintenance()) << states[1].describe();
  EXPECT_FALSE(states[1].serving());
  // Without a backend: every backend (just ours here).
  EXPECT_EQ(rt.show_servers_state().size(), 2u);
}

TEST_F(HaproxyRuntimeTest, ShowStatAndShowInfo) {
  HaproxyRuntime rt(proxy.socket());
  auto rows = rt.show_stat();
  bool old_row = false, new_row = false;
  for (const auto& r : rows) {
    if (r.at("pxname") == "fhir" && r.at("svname") == "old") {
      old_row = true;
      EXPECT_EQ(r.at("status"), "UP");
    }
    if (r.at("pxname") == "fhir" && r.at("svname") == "new") {
      new_row = true;
      EXPECT_EQ(r.at("status"), "MAINT");
    }
  }
  EXPECT_TRUE(old_row && new_row);
  auto info = rt.show_info();
  EXPECT_EQ(info.at("Name"), "HAProxy");
  EXPECT_FALSE(info.at("Version").empty());
}

TEST_F(HaproxyRuntimeTest, SwitchingChangesWhichServerAnswers) {
  HaproxyRuntime rt(proxy.socket());
  auto before = whoami(proxy.url());
  EXPECT_EQ(before.first, "old");
  EXPECT_EQ(before.second, "old");  // the template's X-Fhirshift-Served-By header

  rt.set_server_state("fhir", "new", AdminState::kReady);
  ASSERT_TRUE(proxy.wait_until_up("new", std::chrono::seconds(10)));
  rt.set_server_state("fhir", "old", AdminState::kMaint);
  EXPECT_TRUE(rt.server_state("fhir", "old").in_maintenance());
  EXPECT_TRUE(rt.server_state("fhir", "new").serving());
  for (int i = 0; i < 5; ++i) {
    auto now = whoami(proxy.url());
    EXPECT_EQ(now.first, "new");
    EXPECT_EQ(now.second, "new");
  }

  // And back.
  rt.set_server_state("fhir", "old", AdminState::kReady);
  ASSERT_TRUE(proxy.wait_until_up("old", std::chrono::seconds(10)));
  rt.set_server_state("fhir", "new", AdminState::kMaint);
  EXPECT_EQ(whoami(proxy.url()).first, "old");
}

TEST_F(HaproxyRuntimeTest, DrainKeepsTheServerOutOfNewTraffic) {
  HaproxyRuntime rt(proxy.socket());
  rt.set_server_state("fhir", "new", AdminState::kReady);
  ASSERT_TRUE(proxy.wait_until_up("new", std::chrono::seconds(10)));
  rt.set_server_state("fhir", "old", AdminState::kDrain);
  auto old_state = rt.server_state("fhir", "old");
  EXPECT_TRUE(old_state.draining());
  EXPECT_FALSE(old_state.serving());
  EXPECT_EQ(whoami(proxy.url()).first, "new");
}

TEST_F(HaproxyRuntimeTest, ErrorsNameTheSocketAndTheCommand) {
  HaproxyRuntime rt(proxy.socket());
  try {
    rt.set_server_state("fhir", "nosuch", AdminState::kReady);
    FAIL() << "expected HaproxyError";
  } catch (const HaproxyError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find(proxy.socket()), std::string::npos) << what;
    EXPECT_NE(what.find("set server fhir/nosuch state ready"), std::string::npos) << what;
    EXPECT_NE(what.find("No such server"), std::string::npos) << what;
  }
  EXPECT_THROW(rt.server_state("fhir", "nosuch"), HaproxyError);
  EXPECT_THROW(rt.show_servers_state("nosuchbackend"), HaproxyError);
  EXPECT_THROW(rt.execute("no such command"), HaproxyError);
}

TEST_F(HaproxyRuntimeTest, AServerFailingItsHealthCheckGoesDownAndStopsGettingTraffic) {
  HaproxyRuntime rt(proxy.socket());
  rt.set_server_state("fhir", "new", AdminState::kReady);
  ASSERT_TRUE(proxy.wait_until_up("new", std::chrono::seconds(10)));
  rt.set_server_state("fhir", "old", AdminState::kMaint);
  new_server.set_healthy(false);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (rt.server_state("fhir", "new").running() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(rt.server_state("fhir", "new").running());
  EXPECT_EQ(rt.server_state("fhir", "new").describe(), "DOWN");
}

}  // namespace
}  // namespace fhirshift::testing
