"""The GraphQL documents the adapter sends (checked on Dagster 1.13.27)."""

REPOSITORIES = """
query Repositories {
  repositoriesOrError {
    __typename
    ... on RepositoryConnection { nodes { name location { name }
        jobs { name description isAssetJob }
        assetNodes { assetKey { path } dependencyKeys { path } jobNames groupName description } } }
    ... on Error { message }
  }
}
"""

LAUNCH_RUN = """
mutation LaunchRun($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on RunConfigValidationInvalid { errors { message reason } }
    ... on PipelineNotFoundError { message }
    ... on PythonError { message }
    ... on Error { message }
  }
}
"""

REEXECUTE = """
mutation Reexecute($reexecutionParams: ReexecutionParams!) {
  launchRunReexecution(reexecutionParams: $reexecutionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on PythonError { message }
    ... on Error { message }
  }
}
"""

RUNS = """
query Runs($filter: RunsFilter, $limit: Int) {
  runsOrError(filter: $filter, limit: $limit) {
    __typename
    ... on Runs { results { runId status jobName startTime endTime tags { key value } } }
    ... on Error { message }
  }
}
"""

# The typed metadata values every document that reads metadata asks for.
META_FRAGMENT = """fragment Meta on MetadataEntry {
  __typename label
  ... on FloatMetadataEntry { floatValue }
  ... on IntMetadataEntry { intValue }
  ... on TextMetadataEntry { text }
  ... on JsonMetadataEntry { jsonString }
  ... on BoolMetadataEntry { boolValue }
}
"""

EVENTS = """
query RunEvents($runId: ID!, $afterCursor: String, $limit: Int) {
  logsForRun(runId: $runId, afterCursor: $afterCursor, limit: $limit) {
    __typename
    ... on EventConnection {
      cursor hasMore
      events {
        __typename
        ... on MessageEvent { message timestamp level stepKey }
        ... on ExecutionStepFailureEvent { error { message className cause { message } } }
        ... on ExecutionStepOutputEvent { outputName metadataEntries { ...Meta } }
        ... on MaterializationEvent { assetKey { path } metadataEntries { ...Meta } }
      }
    }
    ... on Error { message }
  }
}
""" + META_FRAGMENT

TERMINATE = """
mutation Terminate($runId: String!) {
  terminateRun(runId: $runId) {
    __typename
    ... on TerminateRunFailure { message }
    ... on Error { message }
  }
}
"""

REPORT_RUNLESS = """
mutation Report($eventParams: ReportRunlessAssetEventsParams!) {
  reportRunlessAssetEvents(eventParams: $eventParams) {
    __typename
    ... on Error { message }
  }
}
"""

# Materializations or observations of one asset between two times, newest first (Dagster
# has no other order); `{field}` is `assetMaterializations` or `assetObservations`.
ASSET_EVENTS = """
query AssetEvents($assetKey: AssetKeyInput!, $after: String, $before: String, $limit: Int) {
  assetOrError(assetKey: $assetKey) {
    __typename
    ... on Asset {
      events: {field}(afterTimestampMillis: $after, beforeTimestampMillis: $before,
                      limit: $limit) {
        runId timestamp stepKey partition metadataEntries { ...Meta }
        runOrError { __typename ... on Run { jobName } }
      }
    }
    ... on AssetNotFoundError { message }
  }
}
""" + META_FRAGMENT
