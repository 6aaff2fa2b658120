// Indexing speed on the generated corpus (one thread = one core) and the memory of the compiled
// plans. `--plan-memory` prints the plans' heap and the load's peak RSS growth.
// `--write-job=<file>` writes the same resources and parameters in the job format of
// tools/npm/fhirpath-oracle.js, so that bench/index/run.sh can time fhirpath.js on them.
#include <benchmark/benchmark.h>
#include <malloc.h>
#include <sys/resource.h>

#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "corpus/generator.h"
#include "fhirpath/expression.h"
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

// The FHIRPath engine alone, like-for-like with fhirpath.js: parse, then evaluate every indexed
// expression of the type (no skipping by root keys, no conversion to index values).
void BM_EvaluateAllExpressions(benchmark::State& state) {
  static const auto kDocs = corpus("", kCorpusSize);
  static const auto kExprs = [] {
    std::map<std::string, std::vector<std::shared_ptr<const fhirshift::fhirpath::Expression>>> m;
    for (const auto& d : kDocs) {
      if (m.count(d.type)) continue;
      auto& list = m[d.type];
      for (const auto* p : indexer().params(d.type))
        if (p->type != fhirshift::index::ParamType::kComposite &&
            p->type != fhirshift::index::ParamType::kSpecial && !p->expression.empty())
          list.push_back(fhirshift::fhirpath::Expression::compile(p->expression, d.type));
    }
    return m;
  }();
  simdjson::dom::parser parser;
  fhirshift::fhirpath::EvalState eval_state;
  std::vector<fhirshift::fhirpath::Value> out;
  size_t i = 0, values = 0;
  for (auto _ : state) {
    const Doc& d = kDocs[i++ % kDocs.size()];
    simdjson::dom::element doc = parser.parse(d.json);
    for (const auto& e : kExprs.at(d.type)) {
      out.clear();
      eval_state.strings.clear();
      try {
        e->evaluate(doc, eval_state, out);
      } catch (const fhirshift::fhirpath::EvaluationError&) {
      }
      values += out.size();
    }
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["values/resource"] =
      static_cast<double>(values) / static_cast<double>(state.iterations());
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
BENCHMARK(BM_EvaluateAllExpressions);
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

// In a fresh process: the heap the loaded indexer holds, and how much the peak resident set grew
// while loading (the definitions' JSON is parsed whole, then dropped).
void plan_memory() {
  rusage before{}, after{};
  getrusage(RUSAGE_SELF, &before);
  size_t heap_before = heap_in_use();
  auto loaded = Indexer::load(FHIRSHIFT_SEARCH_PARAMETERS);
  size_t held = heap_in_use() - heap_before;
  getrusage(RUSAGE_SELF, &after);
  std::cout << nlohmann::json{{"plan_bytes", held},
                              {"load_peak_rss_growth_bytes",
                               (after.ru_maxrss - before.ru_maxrss) * 1024}}
                   .dump()
            << "\n";
}

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--plan-memory") == 0) {
      plan_memory();
      return 0;
    }
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
