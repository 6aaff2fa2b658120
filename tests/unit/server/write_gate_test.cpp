#include "server/write_gate.h"

#include <gtest/gtest.h>

#include <future>
#include <thread>

namespace fhirshift::server {
namespace {

using namespace std::chrono_literals;

TEST(WriteGate, OpenGateAppliesLocally) {
  WriteGate g(4, 1s);
  auto a = g.enter();
  EXPECT_EQ(a.route, WriteGate::Route::kLocal);
  EXPECT_EQ(g.status().in_flight, 1);
  g.leave();
  EXPECT_EQ(g.status().in_flight, 0);
}

TEST(WriteGate, FenceHoldsWritesUntilReleaseAndForwardsThem) {
  WriteGate g(4, 10s);
  auto st = g.fence(1s);
  EXPECT_EQ(st.held, 0);
  EXPECT_TRUE(g.status().fenced);
  auto held = std::async(std::launch::async, [&] { return g.enter(); });
  EXPECT_EQ(held.wait_for(100ms), std::future_status::timeout) << "a fenced write waits";
  EXPECT_EQ(g.status().held, 1);
  EXPECT_EQ(g.release("http://new:8080"), 1);
  auto a = held.get();
  EXPECT_EQ(a.route, WriteGate::Route::kForward);
  EXPECT_EQ(a.forward_to, "http://new:8080");
  g.leave();
  EXPECT_EQ(g.status().forward_to, "http://new:8080");
  EXPECT_FALSE(g.status().fenced);
  // A later write is forwarded too; a local release ends forwarding.
  EXPECT_EQ(g.enter().route, WriteGate::Route::kForward);
  g.leave();
  g.release("");
  EXPECT_EQ(g.enter().route, WriteGate::Route::kLocal);
  g.leave();
}

TEST(WriteGate, FenceWaitsForWritesInProgress) {
  WriteGate g(4, 10s);
  ASSERT_EQ(g.enter().route, WriteGate::Route::kLocal);
  auto fence = std::async(std::launch::async, [&] { return g.fence(10s); });
  EXPECT_EQ(fence.wait_for(100ms), std::future_status::timeout) << "a write is still in progress";
  g.leave();
  auto st = fence.get();
  EXPECT_EQ(st.in_flight, 0);
}

TEST(WriteGate, HeldTooLongOrTooManyIsUnavailable) {
  WriteGate g(1, 200ms);
  g.fence(1s);
  auto first = std::async(std::launch::async, [&] { return g.enter(); });
  std::this_thread::sleep_for(50ms);
  auto second = g.enter();  // the hold limit (1) is reached
  EXPECT_EQ(second.route, WriteGate::Route::kUnavailable);
  EXPECT_EQ(first.get().route, WriteGate::Route::kUnavailable);  // held 200 ms: gives up
  EXPECT_EQ(g.status().held, 0);
}

}  // namespace
}  // namespace fhirshift::server
