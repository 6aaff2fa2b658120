#include <gtest/gtest.h>

#include "cutover/haproxy_config.h"
#include "cutover/haproxy_runtime.h"

namespace fhirshift::cutover {
namespace {

// Captured from Debian's HAProxy 2.6 with tools/haproxy/fhirshift.cfg.in right after start
// (old UP, new `disabled`) and after `set server fhir/new state ready` + `.../old state maint`.
const char* kStateAtStart =
    "1\n"
    "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight "
    "srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state "
    "srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl "
    "srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n"
    "3 fhir 1 old 127.0.0.1 2 0 1 1 1 15 3 3 6 0 0 0 - 18081 - 0 0 - - 0\n"
    "3 fhir 2 new 127.0.0.1 0 5 1 1 7 1 0 0 14 0 0 0 - 18082 - 0 0 - - 0\n";
const char* kStateAfterSwitch =
    "1\n"
    "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight "
    "srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state "
    "srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl "
    "srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n"
    "3 fhir 1 old 127.0.0.1 0 1 1 1 0 15 3 0 14 0 0 0 - 18081 - 0 0 - - 0\n"
    "3 fhir 2 new 127.0.0.1 2 4 1 1 0 1 0 2 6 0 0 0 - 18082 - 0 0 - - 0\n";

TEST(HaproxyParse, ServersStateAtStartOldServesNewInMaintenance) {
  auto states = parse_servers_state(kStateAtStart);
  ASSERT_EQ(states.size(), 2u);
  EXPECT_EQ(states[0].backend, "fhir");
  EXPECT_EQ(states[0].server, "old");
  EXPECT_EQ(states[0].address, "127.0.0.1");
  EXPECT_EQ(states[0].port, 18081);
  EXPECT_TRUE(states[0].serving());
  EXPECT_EQ(states[0].describe(), "UP");
  EXPECT_EQ(states[1].server, "new");
  EXPECT_TRUE(states[1].in_maintenance());
  EXPECT_FALSE(states[1].serving());
  EXPECT_EQ(states[1].describe(), "MAINT");
  EXPECT_EQ(states[1].fields.at("srv_check_state"), "14");
}

TEST(HaproxyParse, ConfigMaintFlagAloneDoesNotMeanMaintenance) {
  // `disabled` in the configuration leaves CMAINT (0x04) set after `state ready`: still serving.
  auto states = parse_servers_state(kStateAfterSwitch);
  ASSERT_EQ(states.size(), 2u);
  EXPECT_TRUE(states[0].in_maintenance());
  EXPECT_FALSE(states[0].serving());
  EXPECT_EQ(states[1].admin_state, 4);
  EXPECT_TRUE(states[1].serving());
}

TEST(HaproxyParse, ServersStateRejectsOtherFormats) {
  EXPECT_THROW(parse_servers_state(""), std::runtime_error);
  EXPECT_THROW(parse_servers_state("2\n# a b\n1 2\n"), std::runtime_error);
  EXPECT_THROW(parse_servers_state("1\n3 fhir 1 old\n"), std::runtime_error);
}

TEST(HaproxyParse, ServersStateOfAnEmptyBackendIsEmpty) {
  EXPECT_TRUE(parse_servers_state("1\n# be_id be_name srv_id srv_name\n").empty());
}

TEST(HaproxyParse, ShowStatKeysRowsByHeader) {
  auto rows = parse_show_stat(
      "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,status,\n"
      "fhir_in,FRONTEND,,,0,1,9985,2,178,396,OPEN,\n"
      "fhir,old,0,0,0,1,,1,89,198,MAINT,\n"
      "fhir,new,0,0,0,1,,7,89,198,UP,\n");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].at("pxname"), "fhir_in");
  EXPECT_EQ(rows[1].at("status"), "MAINT");
  EXPECT_EQ(rows[2].at("stot"), "7");
  EXPECT_EQ(rows[0].at("qcur"), "");
  EXPECT_THROW(parse_show_stat("fhir,old\n"), std::runtime_error);
}

TEST(HaproxyParse, ShowInfo) {
  auto info = parse_show_info("Name: HAProxy\nVersion: 2.6.12-1+deb12u4\nUptime_sec: 12\n");
  EXPECT_EQ(info.at("Name"), "HAProxy");
  EXPECT_EQ(info.at("Version"), "2.6.12-1+deb12u4");
  EXPECT_THROW(parse_show_info("\n"), std::runtime_error);
}

TEST(HaproxyParse, AdminStateNames) {
  EXPECT_EQ(parse_admin_state("READY"), AdminState::kReady);
  EXPECT_EQ(parse_admin_state("maint"), AdminState::kMaint);
  EXPECT_EQ(parse_admin_state("Drain"), AdminState::kDrain);
  EXPECT_FALSE(parse_admin_state("up").has_value());
  EXPECT_EQ(to_string(AdminState::kMaint), "maint");
}

TEST(HaproxyRuntimeErrors, NameTheSocketAndTheCommand) {
  HaproxyRuntime rt("/nonexistent/fhirshift-test.sock", std::chrono::milliseconds(200));
  try {
    rt.set_server_state("fhir", "new", AdminState::kReady);
    FAIL() << "expected HaproxyError";
  } catch (const HaproxyError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("/nonexistent/fhirshift-test.sock"), std::string::npos) << what;
    EXPECT_NE(what.find("set server fhir/new state ready"), std::string::npos) << what;
    EXPECT_NE(what.find("is HAProxy running"), std::string::npos) << what;
  }
  // Names that would smuggle a second command in are refused before anything is sent.
  EXPECT_THROW(rt.set_server_state("fhir", "new;shutdown", AdminState::kReady), HaproxyError);
  EXPECT_THROW(rt.execute("show info; show stat"), HaproxyError);
}

TEST(FenceStatusParser, ReadsTheFenceLine) {
  FenceStatus f =
      parse_fence_status("name=fhir fenced=1 held=3 in_flight=0 passed=812 held_ms=1520");
  EXPECT_EQ(f.name, "fhir");
  EXPECT_TRUE(f.fenced);
  EXPECT_EQ(f.held, 3);
  ASSERT_TRUE(f.in_flight.has_value());
  EXPECT_EQ(*f.in_flight, 0);
  EXPECT_EQ(f.passed, 812);
  EXPECT_EQ(f.held_ms, 1520);
  // Without the stick table the fence cannot count writes in flight: unknown, not 0.
  FenceStatus no_table = parse_fence_status(
      "name=fhir fenced=0 held=0 in_flight=unknown(no stick table fhirshift_writes with conn_cur) "
      "passed=0 held_ms=0");
  EXPECT_FALSE(no_table.fenced);
  EXPECT_FALSE(no_table.in_flight.has_value());
  EXPECT_THROW(parse_fence_status("name=fhir fenced=yes held=0 in_flight=0 passed=0 held_ms=0"),
               std::runtime_error);
  EXPECT_THROW(parse_fence_status("Unknown command"), std::runtime_error);
}

TEST(HaproxyConfig, RendersEveryPlaceholderOrRefuses) {
  std::string tpl = "bind @FRONTEND@\nserver old @OLD_SERVER@ check\n# mail@example.org stays\n";
  std::string out = render_template(tpl, {{"FRONTEND", "127.0.0.1:1"}, {"OLD_SERVER", "h:2"}});
  EXPECT_EQ(out, "bind 127.0.0.1:1\nserver old h:2 check\n# mail@example.org stays\n");
  EXPECT_THROW(render_template(tpl, {{"FRONTEND", "x"}}), std::invalid_argument);
}

TEST(HaproxyConfig, ShippedTemplateRendersWithTheDocumentedPlaceholders) {
  std::string out = render_template_file(
      std::string(FHIRSHIFT_SOURCE_DIR) + "/tools/haproxy/fhirshift.cfg.in",
      {{"SOCKET", "/tmp/x.sock"}, {"FRONTEND", "127.0.0.1:1"}, {"OLD_SERVER", "127.0.0.1:2"},
       {"NEW_SERVER", "127.0.0.1:3"}, {"FENCE_LUA", "/opt/fhirshift_fence.lua"},
       {"HEALTH_PATH", "/metadata"}});
  EXPECT_NE(out.find("stats socket /tmp/x.sock mode 600 level admin"), std::string::npos);
  EXPECT_NE(out.find("lua-load /opt/fhirshift_fence.lua"), std::string::npos);
  EXPECT_NE(out.find("http-request lua.fhirshift_fence fhir 30 if fhirshift_write"), std::string::npos);
  EXPECT_NE(out.find("http-check send meth GET uri /metadata"), std::string::npos);
  EXPECT_NE(out.find("server new 127.0.0.1:3 check disabled"), std::string::npos);
  EXPECT_NE(out.find("timeout queue"), std::string::npos);
  EXPECT_NE(out.find("option redispatch"), std::string::npos);
}

}  // namespace
}  // namespace fhirshift::cutover
