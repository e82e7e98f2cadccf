// Package tagging owns the user interest-tag model and everything built on it:
//
//   - the default model (model.go, model_sql.go): every event adds its action's weight,
//     decayed with a half-life, to the tags of its item; per user × tag the raw decayed
//     sums are kept incrementally in dws_user_tag_daily, and IDF, per-user normalisation,
//     minimum weight and top-N are applied at output into ads_user_interest_tags;
//   - the user profile (profile.go): ads_user_profile, one row per user;
//   - tag definitions (definition.go): YAML files with SQL returning (user_id, value[,
//     weight]), run per ds into ads_user_tags, catalogued with lineage in sys_tags;
//   - audiences (audience.go): boolean expressions over tags materialised into
//     ads_audiences, each run recorded in sys_audience_runs, and exported to CSV or a
//     Kafka topic;
//   - explanations (explain.go): a user's top tags with the events that contributed most.
//
// TABLES.md documents every table's columns (frozen by TestTablesDoc).
//
// The model is SQL run by DuckDB, so the same statements can run on Spark SQL or Trino.
// Tables live in a Store: the warehouse (Parquet) in production, a DuckDB database in
// tests and for small installs. tagging schedules nothing: jobs registers RunModel and
// RunDefinition as tasks.
package tagging
