#include <spdlog/spdlog.h>

#include <iostream>

#include "commands.h"
#include "common/log.h"
#include "common/version.h"
#include "legacy_options.h"
#include "mongo/client.h"
#include "provision/provision.h"

namespace fhirshift::cli {
namespace {

struct ProvisionArgs {
  std::string connection_string;
  std::string collection = "vonkentries";
  std::string provision_target = "true";
  std::string db_type = "MongoDb";
  bool force = false;
  bool shard = false;
  bool verbose = false;
  LegacyOptions legacy;
};

int run_provision(const ProvisionArgs& args) {
  init_logging(args.verbose);
  args.legacy.log_notices();
  if (!parse_bool_flag(args.provision_target, "--provisionTargetDatabase")) {
    spdlog::info("--provisionTargetDatabase false: nothing to do");
    return kExitOk;
  }
  mongo::Uri uri = mongo::Uri::parse(args.connection_string);
  mongo::ClientPool pool(uri);
  mongo::Client client = pool.acquire();
  client.ping();

  provision::Options options;
  options.collection = args.collection;
  options.force = args.force;
  options.shard = args.shard;
  mongo::Builder from;
  from.append("tool", std::string("fhirshift ") + kVersion);
  options.migrated_from = from.extract();

  const std::string ns = uri.database() + "." + args.collection;
  try {
    provision::Report report = provision::provision(client, uri.database(), options);
    for (const auto& n : report.notices) spdlog::warn("{}", n);
    for (const auto& a : report.actions) spdlog::info("{}: {}", ns, a);
    if (report.already_provisioned) {
      std::cout << ns << " on " << uri.hosts() << " is already provisioned: nothing to do\n";
    } else {
      std::cout << ns << " on " << uri.hosts() << " provisioned for the current schema ("
                << report.actions.size() << " steps)\n";
    }
    return kExitOk;
  } catch (const provision::ProvisionError& e) {
    spdlog::error("{}", e.what());
    return kExitFailure;
  }
}

}  // namespace

void add_provision(CLI::App& app, Action& action) {
  auto args = std::make_shared<ProvisionArgs>();
  auto* sub = app.add_subcommand(
      "provision",
      "Prepare an empty target database for the current schema: collection, indexes, system "
      "document and (with --shard, on a sharded cluster) the shard key. Safe to re-run.");
  sub->add_option("--mongoConnectionstring,--mongoConnectionString", args->connection_string,
                  "Target MongoDB connection string; the database is its path (default vonkdata)")
      ->required();
  sub->add_option("--mongoCollection", args->collection, "Target collection")->capture_default_str();
  sub->add_option("--provisionTargetDatabase", args->provision_target,
                  "Accepted for the legacy tool's runbooks: true (default) or false");
  sub->add_option("--dbType", args->db_type, "Target database type (only MongoDb)")
      ->check(CLI::IsMember({"MongoDb"}, CLI::ignore_case));
  sub->add_flag("--force", args->force, "Provision even though the target already holds entries");
  sub->add_flag("--shard", args->shard,
                "On a sharded cluster (mongos), shard the collection with the schema's shard key");
  sub->add_flag("-v,--verbose", args->verbose, "Debug logging");
  args->legacy.add_to(sub);
  sub->callback([args, &action] { action = [args] { return run_provision(*args); }; });
}

}  // namespace fhirshift::cli
