// The Throttle's arithmetic on a hand-driven clock: the token bucket's rate and burst, pause, live
// changes, and the AIMD response to the source's latency.
#include "migrate/throttle.h"

#include <gtest/gtest.h>

namespace fhirshift::migrate {
namespace {

using namespace std::chrono_literals;

struct FakeClock {
  Throttle::Clock::time_point t = Throttle::Clock::time_point{} + 1h;
  Throttle::Now fn() {
    return [this] { return t; };
  }
};

// Reads `n` entries one at a time as a reader does, waiting what it is told; returns the time
// taken.
std::chrono::duration<double> read_entries(Throttle& th, FakeClock& clock, int n) {
  auto start = clock.t;
  for (int i = 0; i < n; ++i) clock.t += th.reserve(1);
  return clock.t - start;
}

TEST(ThrottleTest, UnlimitedNeverWaits) {
  FakeClock clock;
  Throttle th(clock.fn());
  EXPECT_EQ(read_entries(th, clock, 10000).count(), 0);
  Throttle::State s = th.state();
  EXPECT_FALSE(s.throttled);
  EXPECT_EQ(s.rate_limit, 0);
  EXPECT_EQ(s.reason, "");
}

TEST(ThrottleTest, MaxRateHoldsOverAnyWindowBeyondTheBurst) {
  FakeClock clock;
  Throttle th(clock.fn());
  th.set_max_rate(50);
  // 1,000 entries at 50/s: 20 s, less the tenth of a second's burst allowed at the start.
  double s = read_entries(th, clock, 1000).count();
  EXPECT_NEAR(s, 20.0, 0.25);
  EXPECT_TRUE(th.state().throttled);
  EXPECT_EQ(th.state().reason_kind, "max rate");
  EXPECT_EQ(th.state().reason, "max rate 50 entries/s");
  // A reader that takes its time is not throttled once the limit stopped holding it back.
  clock.t += 5s;
  th.reserve(1);
  EXPECT_FALSE(th.state().throttled);
}

TEST(ThrottleTest, IdleTimeBuysOnlyASmallBurst) {
  FakeClock clock;
  Throttle th(clock.fn());
  th.set_max_rate(100);
  read_entries(th, clock, 10);
  clock.t += 60s;  // a quiet minute is no licence for 6,000 entries at once
  EXPECT_NEAR(read_entries(th, clock, 1000).count(), 10.0 - 0.1, 0.05);
}

TEST(ThrottleTest, AReaderThatWritesInTurnTakesTheTurnsItMissedWhileWriting) {
  FakeClock clock;
  Throttle th(clock.fn());
  th.set_max_rate(20);
  // The file import: reads a chunk for a quarter of a second, then writes it for 1 s; ten times.
  // Without the credit each write costs the rate its length (beyond the 0.1 s burst).
  auto run = [&](bool credit) {
    auto start = clock.t;
    Throttle::Clock::duration writing{};
    int read = 0;
    for (int chunk = 0; chunk < 10; ++chunk) {
      auto chunk_started = clock.t;
      do {
        clock.t += th.reserve(1, credit ? writing : Throttle::Clock::duration::zero());
        ++read;
      } while (clock.t - chunk_started < 250ms);
      clock.t += 1s;
      writing = 1s;
    }
    return read / std::chrono::duration<double>(clock.t - start).count();
  };
  double without = run(false);
  EXPECT_LT(without, 20.0 * 0.5) << without;
  th.set_max_rate(20);  // a fresh start
  clock.t += 60s;
  // The first chunk has no write before it; the nine others take the turns of the write before.
  double with = run(true);
  EXPECT_GT(with, 20.0 * 0.9) << with;
  EXPECT_LE(with, 20.0 * 1.05) << with;
  // The credit is the write's length, not the idle time before it.
  clock.t += 60s;
  auto start = clock.t;
  for (int i = 0; i < 200; ++i) clock.t += th.reserve(1, 1s);
  EXPECT_NEAR(std::chrono::duration<double>(clock.t - start).count(), 10.0 - 1.1, 0.1);
}

TEST(ThrottleTest, LiveChangesTakeEffectAtOnceAndBumpTheGeneration) {
  FakeClock clock;
  Throttle th(clock.fn());
  th.set_max_rate(10);
  uint64_t g = th.generation();
  EXPECT_NEAR(read_entries(th, clock, 100).count(), 10.0, 0.25);
  th.set_max_rate(100);
  EXPECT_GT(th.generation(), g);
  EXPECT_NEAR(read_entries(th, clock, 1000).count(), 10.0, 0.25);
  th.set_max_rate(0);
  EXPECT_EQ(read_entries(th, clock, 1000).count(), 0);
}

TEST(ThrottleTest, PauseRefusesEntriesUntilResumed) {
  FakeClock clock;
  Throttle th(clock.fn());
  std::function<bool()> never = [] { return false; };
  EXPECT_TRUE(th.admit(never));
  uint64_t g = th.generation();
  th.pause();
  EXPECT_GT(th.generation(), g);
  EXPECT_FALSE(th.admit(never));
  Throttle::State s = th.state();
  EXPECT_TRUE(s.paused);
  EXPECT_TRUE(s.throttled);
  EXPECT_EQ(s.reason_kind, "paused");
  th.resume();
  EXPECT_TRUE(th.admit(never));
  EXPECT_FALSE(th.state().throttled);
}

TEST(ThrottleTest, AdmitGivesUpWhenStopped) {
  Throttle th;  // the real clock: admit sleeps
  th.set_max_rate(1);
  std::function<bool()> never = [] { return false; };
  EXPECT_TRUE(th.admit(never));  // the burst
  std::function<bool()> stopping = [] { return true; };
  EXPECT_FALSE(th.admit(stopping));
}

// A second in which the source answers in `ms`: `samples` response times, evenly spread.
void second_of(Throttle& th, FakeClock& clock, double ms, int samples = 4) {
  auto end = clock.t + 1s;
  for (int i = 0; i < samples; ++i) {
    th.record_latency(std::chrono::microseconds(static_cast<int64_t>(ms * 1000)));
    clock.t += 1s / samples;
  }
  clock.t = end;
}

// A reader at full speed (no --max-rate) for a second: entries as fast as allowed, at most `cap`.
int64_t read_for_a_second(Throttle& th, FakeClock& clock, int64_t cap) {
  auto end = clock.t + 1s;
  int64_t n = 0;
  while (n < cap) {
    auto wait = th.reserve(1);
    if (clock.t + wait >= end) break;
    clock.t += wait + 1ms / 10;  // each read takes a tenth of a millisecond
    ++n;
  }
  clock.t = end;
  return n;
}

TEST(ThrottleTest, LatencyAboveTheLimitHalvesTheRateAndRecoveryRestoresIt) {
  FakeClock clock;
  Throttle th(clock.fn());
  th.set_max_source_latency(100ms);
  // Healthy source: the reader runs at its own speed (2,000 entries/s here).
  for (int i = 0; i < 3; ++i) {
    second_of(th, clock, 5);
    EXPECT_EQ(read_for_a_second(th, clock, 2000), 2000);
  }
  EXPECT_FALSE(th.state().throttled);
  // The source slows down: each second of slow answers halves the rate.
  std::vector<double> limits;
  for (int i = 0; i < 5; ++i) {
    second_of(th, clock, 400);
    read_for_a_second(th, clock, 2000);
    limits.push_back(th.state().rate_limit);
  }
  ASSERT_GT(limits[0], 0);
  EXPECT_LE(limits[0], 1000 + 1);
  for (size_t i = 1; i < limits.size(); ++i) EXPECT_LT(limits[i], limits[i - 1]) << i;
  Throttle::State s = th.state();
  EXPECT_TRUE(s.throttled);
  EXPECT_EQ(s.reason_kind, "source latency");
  EXPECT_NE(s.reason.find("limit 100 ms"), std::string::npos) << s.reason;
  // The reader now reads at most the limit.
  EXPECT_LE(read_for_a_second(th, clock, 2000), static_cast<int64_t>(limits.back()) + 1 + 10);
  // Recovery: the rate grows additively (a tenth of the pre-cut rate a second) and the limit is
  // lifted once the pre-cut rate is reached.
  double before = th.state().rate_limit;
  second_of(th, clock, 5);
  second_of(th, clock, 5);
  double after = th.state().rate_limit;
  EXPECT_GT(after, before);
  EXPECT_LT(after - before, 2 * 2000.0 / 10 + 1);  // additive, not multiplicative
  for (int i = 0; i < 20 && th.state().rate_limit > 0; ++i) second_of(th, clock, 5);
  EXPECT_EQ(th.state().rate_limit, 0);
  EXPECT_FALSE(th.state().throttled);
  EXPECT_EQ(read_for_a_second(th, clock, 2000), 2000);
}

TEST(ThrottleTest, LatencyLimitWorksBelowAMaxRateAndNeverStopsTheCopy) {
  FakeClock clock;
  Throttle th(clock.fn());
  th.set_max_rate(200);
  th.set_max_source_latency(50ms);
  for (int i = 0; i < 30; ++i) {
    second_of(th, clock, 500);
    read_for_a_second(th, clock, 100000);
  }
  EXPECT_EQ(th.state().rate_limit, Throttle::kMinRate);
  EXPECT_LE(read_entries(th, clock, 3).count(), 3.5);  // slowed to 1 entry/s, never stopped
  // Lifting the latency limit leaves the max rate.
  th.set_max_source_latency(0ms);
  EXPECT_EQ(th.state().rate_limit, 200);
}

TEST(ThrottleTest, DecisionsWaitForFreshSamples) {
  FakeClock clock;
  Throttle th(clock.fn());
  th.set_max_source_latency(100ms);
  for (int i = 0; i < 2; ++i) read_for_a_second(th, clock, 1000);
  second_of(th, clock, 300);
  read_for_a_second(th, clock, 1000);
  double first = th.state().rate_limit;
  ASSERT_GT(first, 0);
  // No new samples: the slow ones that caused the cut do not cut again.
  for (int i = 0; i < 3; ++i) read_for_a_second(th, clock, 1000);
  EXPECT_EQ(th.state().rate_limit, first);
}

}  // namespace
}  // namespace fhirshift::migrate
