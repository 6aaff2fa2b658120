// `fhirshift serve`'s admin endpoints (docs/serve.md): fence holds writes while reads flow, release
// lets them proceed or forwards them (and every later write) to another server; `--no-admin` turns
// them off. The cut-over no longer uses them (its fence is in HAProxy).
#include <gtest/gtest.h>

#include <future>
#include <nlohmann/json.hpp>

#include "cutover/http_client.h"
#include "server_fixture.h"

namespace fhirshift::testing {
namespace {

using namespace std::chrono_literals;
using server::Schema;

// The admin endpoints over HTTP, each answer read into the fields the tests check.
class AdminClient {
 public:
  explicit AdminClient(const std::string& url) : url_(url) {}
  struct Fence {
    bool fenced;
    int64_t held_writes, in_flight_writes;
  };
  struct Release {
    int64_t released_writes;
  };
  struct Status {
    bool fenced;
    std::string forward_to;
  };
  Fence fence() {
    auto j = call("POST", "/admin/fence");
    return {j.at("fenced").get<bool>(), j.at("heldWrites").get<int64_t>(),
            j.at("inFlightWrites").get<int64_t>()};
  }
  Release release(const std::string& forward_to) {
    std::string path = "/admin/release";
    if (!forward_to.empty()) path += "?forward=" + cutover::url_encode(forward_to);
    return {call("POST", path).at("released").get<int64_t>()};
  }
  Status status() {
    auto j = call("GET", "/admin/status");
    return {j.at("fenced").get<bool>(), j.at("forwardTo").get<std::string>()};
  }

 private:
  nlohmann::json call(const std::string& method, const std::string& path) {
    httplib::Client c(url_);
    c.set_read_timeout(std::chrono::seconds(35));
    auto r = method == "GET" ? c.Get(path) : c.Post(path, "", "text/plain");
    if (!r || r->status != 200)
      throw std::runtime_error(method + " " + path + ": " + (r ? std::to_string(r->status) : "no answer"));
    return nlohmann::json::parse(r->body);
  }
  std::string url_;
};

class Admin : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { db_ = new FerretDbServer(); }
  static void TearDownTestSuite() { delete db_; }

  void SetUp() override {
    static int n = 0;
    std::string suffix = std::to_string(n++);
    old_uri = db_->uri("adminold" + suffix);
    new_uri = db_->uri("adminnew" + suffix);
    provision_current(new_uri);
    auto o = server_options(Schema::kLegacy, old_uri);
    o.hold_timeout = 3s;
    old_srv = std::make_unique<RunningServer>(o);
    new_srv = std::make_unique<RunningServer>(server_options(Schema::kCurrent, new_uri));
  }

  std::future<httplib::Result> put_async(RunningServer& s, const std::string& id) {
    return std::async(std::launch::async, [&s, id] {
      auto c = s.client();
      return c.Put(("/Patient/" + id).c_str(),
                   R"({"resourceType":"Patient","id":")" + id + R"("})", kFhirJson);
    });
  }
  static int status_of(RunningServer& s, const std::string& path) {
    auto c = s.client();
    auto r = c.Get(path.c_str());
    return r ? r->status : -1;
  }

  static FerretDbServer* db_;
  std::string old_uri, new_uri;
  std::unique_ptr<RunningServer> old_srv, new_srv;
};
FerretDbServer* Admin::db_ = nullptr;

TEST_F(Admin, FenceHoldsWritesReadsFlowReleaseAppliesThemLocally) {
  ASSERT_EQ(put_async(*old_srv, "before").get()->status, 201);
  AdminClient admin(old_srv->url());
  auto f = admin.fence();
  EXPECT_TRUE(f.fenced);
  EXPECT_EQ(f.held_writes, 0);
  EXPECT_EQ(f.in_flight_writes, 0);
  EXPECT_TRUE(admin.status().fenced);

  auto held = put_async(*old_srv, "held");
  EXPECT_EQ(held.wait_for(300ms), std::future_status::timeout) << "a fenced write waits";
  EXPECT_EQ(status_of(*old_srv, "/Patient/before"), 200) << "reads flow during the fence";
  EXPECT_EQ(status_of(*old_srv, "/Patient/held"), 404) << "the held write is not applied yet";
  // Fencing again is harmless and reports the held write.
  EXPECT_EQ(admin.fence().held_writes, 1);

  auto r = admin.release("");
  EXPECT_EQ(r.released_writes, 1);
  auto answer = held.get();
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->status, 201) << answer->body;
  EXPECT_EQ(status_of(*old_srv, "/Patient/held"), 200);
  auto st = admin.status();
  EXPECT_FALSE(st.fenced);
  EXPECT_EQ(st.forward_to, "");
}

TEST_F(Admin, ReleaseWithForwardSendsHeldAndLaterWritesToTheNewServer) {
  AdminClient admin(old_srv->url());
  admin.fence();
  auto held = put_async(*old_srv, "moved");
  auto held_create = std::async(std::launch::async, [&] {
    auto c = old_srv->client();
    return c.Post("/Observation", R"({"resourceType":"Observation","status":"final","code":{"text":"x"}})",
                  kFhirJson);
  });
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(admin.status().fenced, true);
  auto rel = admin.release(new_srv->url());
  EXPECT_EQ(rel.released_writes, 2);
  auto a = held.get();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->status, 201) << a->body;
  EXPECT_EQ(a->get_header_value("ETag"), "W/\"1\"");
  // The Location names the address the client used, not the new server's.
  EXPECT_EQ(a->get_header_value("Location"), old_srv->url() + "/Patient/moved/_history/1");
  EXPECT_EQ(held_create.get()->status, 201);
  EXPECT_EQ(status_of(*new_srv, "/Patient/moved"), 200) << "applied on the new store";
  EXPECT_EQ(status_of(*old_srv, "/Patient/moved"), 404) << "not on the old store";
  EXPECT_EQ(admin.status().forward_to, new_srv->url());

  // Later writes to the old server are forwarded too, with their If-Match and errors relayed.
  auto c = old_srv->client();
  auto update = c.Put("/Patient/moved", {{"If-Match", "W/\"1\""}},
                      R"({"resourceType":"Patient","id":"moved","active":true})", kFhirJson);
  EXPECT_EQ(update->status, 200) << update->body;
  auto stale = c.Put("/Patient/moved", {{"If-Match", "W/\"1\""}},
                     R"({"resourceType":"Patient","id":"moved"})", kFhirJson);
  EXPECT_EQ(stale->status, 412);
  EXPECT_NE(stale->body.find("OperationOutcome"), std::string::npos);
  EXPECT_EQ(c.Delete("/Patient/moved")->status, 200);
  EXPECT_EQ(status_of(*new_srv, "/Patient/moved"), 410);

  // A plain release makes it apply writes itself again (rollback after a cut-over).
  admin.release("");
  EXPECT_EQ(put_async(*old_srv, "home").get()->status, 201);
  EXPECT_EQ(status_of(*old_srv, "/Patient/home"), 200);
  EXPECT_EQ(status_of(*new_srv, "/Patient/home"), 404);
}

TEST_F(Admin, AWriteHeldTooLongGets503WithRetryAfterAndIsNotApplied) {
  AdminClient admin(old_srv->url());
  admin.fence();
  auto start = std::chrono::steady_clock::now();
  auto r = put_async(*old_srv, "late").get();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->get_header_value("Retry-After"), "1");
  EXPECT_NE(r->body.find("OperationOutcome"), std::string::npos);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 2900ms);
  admin.release("");
  EXPECT_EQ(status_of(*old_srv, "/Patient/late"), 404);
}

TEST_F(Admin, ForwardingToAnUnreachableServerIs503AndALoopIsRefused) {
  AdminClient admin(old_srv->url());
  admin.release("http://127.0.0.1:1");
  auto r = put_async(*old_srv, "nowhere").get();
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->get_header_value("Retry-After"), "1");
  // old forwards to new and new to old: the write is refused, not bounced forever.
  admin.release(new_srv->url());
  AdminClient(new_srv->url()).release(old_srv->url());
  auto loop = put_async(*old_srv, "loop").get();
  EXPECT_EQ(loop->status, 508);
  EXPECT_NE(loop->body.find("forwarding loop"), std::string::npos);
  EXPECT_EQ(status_of(*old_srv, "/Patient/loop"), 404);
  EXPECT_EQ(status_of(*new_srv, "/Patient/loop"), 404);
  // A forward URL that is not http:// is refused.
  auto c = old_srv->client();
  EXPECT_EQ(c.Post("/admin/release?forward=ftp://x", "", "text/plain")->status, 400);
}

TEST_F(Admin, NoAdminAnswers404OnEveryAdminPathAndServesFhir) {
  auto o = server_options(Schema::kLegacy, old_uri);
  o.no_admin = true;
  RunningServer plain(o);
  auto c = plain.client();
  for (const char* path : {"/admin/fence", "/admin/release", "/admin/release?forward=http://x"}) {
    auto r = c.Post(path, "", "text/plain");
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 404) << path;
    EXPECT_NE(r->body.find("OperationOutcome"), std::string::npos) << r->body;
  }
  EXPECT_EQ(status_of(plain, "/admin/status"), 404);
  EXPECT_EQ(put_async(plain, "plain").get()->status, 201);
  EXPECT_EQ(status_of(plain, "/Patient/plain"), 200);
}

}  // namespace
}  // namespace fhirshift::testing
