// Indexing speed on the generated corpus (one thread = one core) and the memory of the compiled
// plans. `--write-job=<file>` writes the same resources and parameters in the job format of
// tools/npm/fhirpath-oracle.js, so that bench/index/run.sh can time fhirpath.js on them.
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "corpus/generator.h"
#include "index/indexer.h"

namespace {

using fhirshift::corpus::Generator;
using fhirshift::index::Indexer;

constexpr uint64_t kSeed = 7;
constexpr int kCorpusSize = 3000;

struct Doc {
  std::string type, json;
};

// `n` resources: of `type`, or of mixed realistic types when `type` is empty.
std::vector<Doc> corpus(const std::string& type, int n) {
  Generator gen(kSeed);
  std::vector<Doc> out;
  for (int i = 0; i < n; ++i) {
    std::string t = type.empty() ? std::string(gen.random_type()) : type;
    out.push_back({t, gen.resource(t, "b" + std::to_string(i))});
  }
  return out;
}

size_t heap_in_use() {
  return mallinfo2().uordblks;
}

const Indexer& indexer() {
  static std::shared_ptr<const Indexer> kIndexer = Indexer::load(FHIRSHIFT_SEARCH_PARAMETERS);
  return *kIndexer;
}

void run(benchmark::State& state, const std::vector<Doc>& docs) {
  const Indexer& idx = indexer();
  size_t i = 0, values = 0, bytes = 0;
  fhirshift::index::IndexStats stats;
  for (auto _ : state) {
    const Doc& d = docs[i++ % docs.size()];
    auto index = idx.index(d.type, d.json, &stats);
    for (const auto& e : index) values += e.values.size();
    bytes += d.json.size();
    benchmark::DoNotOptimize(index);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
  state.counters["values/resource"] =
      static_cast<double>(values) / static_cast<double>(state.iterations());
  state.counters["errors"] = static_cast<double>(stats.evaluation_errors);
}

void BM_IndexMixed(benchmark::State& state) {
  static const auto kDocs = corpus("", kCorpusSize);
  run(state, kDocs);
}
void BM_IndexPatient(benchmark::State& state) {
  static const auto kDocs = corpus("Patient", 500);
  run(state, kDocs);
}
void BM_IndexObservation(benchmark::State& state) {
  static const auto kDocs = corpus("Observation", 500);
  run(state, kDocs);
}

// Loading the definitions and compiling every type's plan; plan_bytes is the heap the loaded
// indexer holds.
void BM_LoadPlans(benchmark::State& state) {
  size_t bytes = 0;
  for (auto _ : state) {
    size_t before = heap_in_use();
    auto loaded = Indexer::load(FHIRSHIFT_SEARCH_PARAMETERS);
    bytes = heap_in_use() - before;
    benchmark::DoNotOptimize(loaded);
  }
  state.counters["plan_bytes"] = static_cast<double>(bytes);
}

BENCHMARK(BM_IndexMixed);
BENCHMARK(BM_IndexPatient);
BENCHMARK(BM_IndexObservation);
BENCHMARK(BM_LoadPlans)->Unit(benchmark::kMillisecond)->Iterations(3);

// The oracle job: the mixed corpus with every indexed parameter of its types.
void write_job(const std::string& path) {
  auto docs = corpus("", kCorpusSize);
  nlohmann::json header;
  for (const auto& d : docs) {
    if (header["params"].contains(d.type)) continue;
    auto& list = header["params"][d.type] = nlohmann::json::array();
    for (const auto* p : indexer().params(d.type))
      if (p->type != fhirshift::index::ParamType::kComposite &&
          p->type != fhirshift::index::ParamType::kSpecial && !p->expression.empty())
        list.push_back(p->expression);
  }
  std::ofstream out(path);
  out << header.dump() << "\n";
  for (const auto& d : docs)
    out << nlohmann::json{{"type", d.type}, {"json", d.json}}.dump() << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--write-job=", 12) == 0) {
      write_job(argv[i] + 12);
      return 0;
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
