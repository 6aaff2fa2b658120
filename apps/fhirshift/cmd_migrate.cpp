#include <iostream>

#include "commands.h"

namespace fhirshift::cli {

// Placeholder until issue #5 lands: the subcommand exists so --help lists it.
void add_migrate(CLI::App& app, Action& action) {
  auto* sub = app.add_subcommand("migrate", "(not implemented yet: issue #5)");
  sub->allow_extras();
  sub->callback([&action] {
    action = [] {
      std::cerr << "fhirshift migrate: not implemented yet (issue #5)\n";
      return kExitFailure;
    };
  });
}

}  // namespace fhirshift::cli
