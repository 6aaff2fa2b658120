#include <iostream>

#include "commands.h"

namespace fhirshift::cli {

// Placeholder until issue #5 (seed a legacy store) lands: the subcommand exists so --help lists it.
void add_seed(CLI::App& app, Action& action) {
  auto* sub = app.add_subcommand("seed", "(not implemented yet: issue #5 (seed a legacy store))");
  sub->allow_extras();
  sub->callback([&action] {
    action = [] {
      std::cerr << "fhirshift seed: not implemented yet (issue #5 (seed a legacy store))\n";
      return kExitFailure;
    };
  });
}

}  // namespace fhirshift::cli
