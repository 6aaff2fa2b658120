// The cut-over's contract with `fhirshift serve` (docs/cutover.md): fence holds writes while reads
// flow, release lets them proceed or forwards them (and every later write) to another server, and
// the cut-over's own HTTP client (cutover::HttpServerAdmin) reads every answer.
#include <gtest/gtest.h>

#include <future>

#include "cutover/adapters.h"
#include "server_fixture.h"

namespace fhirshift::testing {
namespace {

using namespace std::chrono_literals;
using server::Schema;

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
  cutover::HttpServerAdmin admin(old_srv->url());
  EXPECT_TRUE(admin.ready().ok);
  cutover::FenceResult f = admin.fence();
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

  cutover::ReleaseResult r = admin.release("");
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
  cutover::HttpServerAdmin admin(old_srv->url());
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
  cutover::HttpServerAdmin admin(old_srv->url());
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
  cutover::HttpServerAdmin admin(old_srv->url());
  admin.release("http://127.0.0.1:1");
  auto r = put_async(*old_srv, "nowhere").get();
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->get_header_value("Retry-After"), "1");
  // old forwards to new and new to old: the write is refused, not bounced forever.
  admin.release(new_srv->url());
  cutover::HttpServerAdmin(new_srv->url()).release(old_srv->url());
  auto loop = put_async(*old_srv, "loop").get();
  EXPECT_EQ(loop->status, 508);
  EXPECT_NE(loop->body.find("forwarding loop"), std::string::npos);
  EXPECT_EQ(status_of(*old_srv, "/Patient/loop"), 404);
  EXPECT_EQ(status_of(*new_srv, "/Patient/loop"), 404);
  // A forward URL that is not http:// is refused.
  auto c = old_srv->client();
  EXPECT_EQ(c.Post("/admin/release?forward=ftp://x", "", "text/plain")->status, 400);
}

}  // namespace
}  // namespace fhirshift::testing
