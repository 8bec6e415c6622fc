"""Errors with names: each says what failed and what to do about it.

They turn into exit codes (CLI), failed task states (Prefect/Airflow) or DLQ headers (consumer)
only at the edges.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple


class FraudpipeError(Exception):
    """Root of every error fraudpipe raises on purpose."""


class ConfigurationError(FraudpipeError):
    """A setting is missing or wrong."""


class ServiceUnavailableError(FraudpipeError):
    """A service could not be reached."""

    def __init__(self, service: str, url: str, hint: str = "run `make stack-up`") -> None:
        super().__init__(f"{service} not reachable at {url}: {hint}")
        self.service = service
        self.url = url


class AuthenticationRefusedError(FraudpipeError):
    """A service refused a principal's credentials (wrong or missing password)."""

    def __init__(self, service: str, principal: str, detail: str) -> None:
        super().__init__(
            f"{service} refused the credentials of {principal!r} ({detail}): the password in "
            ".env must be the one the stack was provisioned with; `fraudpipe stack up` "
            "provisions it again"
        )
        self.service = service
        self.principal = principal


class NotAuthorizedError(FraudpipeError):
    """A service authenticated a principal and refused what it asked for."""

    def __init__(self, service: str, principal: str, action: str, detail: str = "") -> None:
        why = f" ({detail})" if detail else ""
        super().__init__(f"{service} does not allow {principal!r} to {action}{why}")
        self.service = service
        self.principal = principal
        self.action = action


class StackError(FraudpipeError):
    """The local stack could not install, start or stop a service."""

    def __init__(self, service: str, problem: str, log_file: Path | None = None) -> None:
        where = f" (see {log_file})" if log_file else ""
        super().__init__(f"{service}: {problem}{where}")
        self.service = service
        self.log_file = log_file


class TrainingDataError(FraudpipeError):
    """The labelled history cannot be trained or evaluated on."""

    def __init__(
        self, problem: str, hint: str = "load more labelled days with `fraudpipe ingest`"
    ) -> None:
        super().__init__(f"training data not usable: {problem}: {hint}")
        self.problem = problem


class ModelInputError(FraudpipeError):
    """A frame handed to the model does not match the model-input columns."""

    def __init__(self, problem: str) -> None:
        super().__init__(
            f"model input rejected: {problem}: pass the columns of "
            "fraudpipe.model.features.MODEL_INPUT_COLUMNS (event_time as int64 epoch ms)"
        )
        self.problem = problem


class NoServingModelError(FraudpipeError):
    """No registered model version carries the serving alias."""

    def __init__(self, model_name: str, alias: str) -> None:
        super().__init__(
            f"no version of registered model '{model_name}' has alias '{alias}': "
            "run `fraudpipe train` (the first version becomes champion)"
        )
        self.model_name = model_name
        self.alias = alias


class OverloadedError(FraudpipeError):
    """An API worker already holds as many undecided transactions as it may."""

    def __init__(self, asked: int, in_flight: int, limit: int) -> None:
        super().__init__(
            f"{asked} more transaction(s) refused: {in_flight} are being decided, and a worker "
            f"holds at most {limit} (FRAUDPIPE_API_MAX_IN_FLIGHT); retry shortly"
        )
        self.limit = limit


class ModelTrustError(FraudpipeError):
    """A registered version that must not serve: not what the gate signed, not safely loadable,
    or not scoring its reference frame as recorded."""

    def __init__(self, model: str, version: int, reason: str) -> None:
        super().__init__(
            f"{model} version {version} refused: {reason}; the last version that passed keeps "
            "serving (retrain, or move the alias back, with `fraudpipe train`)"
        )
        self.model = model
        self.version = version
        self.reason = reason


class ModelRegistryError(FraudpipeError):
    """The MLflow model registry refused or lost something fraudpipe relies on."""


class DeploymentNotFoundError(FraudpipeError):
    """A Prefect deployment the pipeline launches does not exist on the server."""

    def __init__(self, deployment: str, api_url: str) -> None:
        super().__init__(
            f"Prefect deployment '{deployment}' not found at {api_url}: "
            "run `fraudpipe deployments apply`"
        )
        self.deployment = deployment


class DeploymentApplyError(FraudpipeError):
    """`prefect deploy` could not create or update the deployments of prefect.yaml."""

    def __init__(self, problem: str, output: str = "") -> None:
        tail = f"\n{output.strip()[-2000:]}" if output.strip() else ""
        super().__init__(f"applying prefect.yaml failed: {problem}{tail}")
        self.problem = problem


class FlowRunFailed(FraudpipeError):  # noqa: N818  # the name the Airflow log should show
    """A Prefect flow run launched by the pipeline ended failed, crashed or cancelled."""

    def __init__(
        self, deployment: str, flow_run_name: str, state_name: str, message: str, url: str
    ) -> None:
        super().__init__(
            f"Prefect flow run '{flow_run_name}' of deployment '{deployment}' ended "
            f"{state_name}: {message or 'no state message'}; logs: {url}"
        )
        self.deployment = deployment
        self.flow_run_name = flow_run_name
        self.state_name = state_name
        self.state_message = message
        self.url = url


class FlowRunTimeoutError(FraudpipeError):
    """A Prefect flow run did not reach a terminal state in time (it may still be running)."""

    def __init__(
        self, deployment: str, flow_run_name: str, state_name: str, timeout: float, url: str
    ) -> None:
        super().__init__(
            f"Prefect flow run '{flow_run_name}' of deployment '{deployment}' still "
            f"{state_name} after {timeout:.0f}s: check the worker (`fraudpipe stack status`) "
            f"and the run at {url}"
        )
        self.deployment = deployment
        self.url = url


class AirflowCommandError(FraudpipeError):
    """An `airflow` CLI command run with fraudpipe's Airflow environment failed."""

    def __init__(self, command: str, returncode: int, output: str = "") -> None:
        tail = f"\n{output.strip()[-2000:]}" if output.strip() else ""
        super().__init__(
            f"`airflow {command}` exited with code {returncode}: check the metadata database "
            f"(`fraudpipe stack status`) and `fraudpipe airflow env`{tail}"
        )
        self.command = command
        self.returncode = returncode


class AirflowApiError(FraudpipeError):
    """A call to Airflow's REST API failed, or what it waited for did not happen."""

    def __init__(self, action: str, problem: str) -> None:
        super().__init__(f"Airflow API, {action}: {problem}")
        self.action = action


class DatasetError(FraudpipeError):
    """The ULB dataset could not be fetched, extracted or verified."""

    def __init__(self, problem: str, hint: str) -> None:
        super().__init__(f"ULB dataset: {problem}: {hint}")
        self.problem = problem


class SourceReadError(FraudpipeError):
    """A source file cannot be read at all (missing, unknown format, corrupt)."""

    def __init__(self, source: str, problem: str, hint: str = "fix or replace the file") -> None:
        super().__init__(f"cannot read {source}: {problem}: {hint}")
        self.source = source


class SourceColumnsError(FraudpipeError):
    """A source file's columns are not the ULB columns: the whole batch is refused."""

    def __init__(self, source: str, missing: list[str], unexpected: list[str]) -> None:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        if unexpected:
            parts.append(f"unexpected {', '.join(unexpected)}")
        super().__init__(
            f"{source} has the wrong columns ({'; '.join(parts)}): a file needs exactly "
            "Time, V1..V28, Amount, optionally Class and an integer id column `id`"
        )
        self.source = source
        self.missing = missing
        self.unexpected = unexpected


class EmptySourceError(FraudpipeError):
    """A source holds no data rows."""

    def __init__(self, source: str) -> None:
        super().__init__(f"{source} holds no data rows: nothing to ingest; check the export")
        self.source = source


class LabelFileError(FraudpipeError):
    """A label file cannot be taken at all (unreadable, too large, wrong columns): nothing of
    it is imported."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(
            f"label file {path}: {problem}: a label file is CSV or Parquet with the columns "
            "transaction_id, label, source, labelled_by, known_at and optionally note"
        )
        self.path = path


class IngestRequestError(FraudpipeError):
    """An ingest was asked for something the source cannot give (e.g. a day it does not hold)."""


class SourceOrderError(FraudpipeError):
    """A source promised its rows in day order and a day came back after a later one."""

    def __init__(self, source: str, day: object) -> None:
        super().__init__(
            f"{source} gave rows of {day} again after a later day: its rows are not in "
            "day order, so its days cannot be loaded as they arrive"
        )


class BatchNotFoundError(FraudpipeError):
    """No batch with this id exists."""

    def __init__(self, batch_id: str) -> None:
        super().__init__(f"batch {batch_id} not found: ingest its day first (`fraudpipe ingest`)")
        self.batch_id = batch_id


class BatchStatusError(FraudpipeError):
    """A batch is not in the status a transition needs (loaded → published → scored)."""

    def __init__(self, batch_id: str, current: str, expected: str, target: str) -> None:
        super().__init__(
            f"batch {batch_id} is {current}, so it cannot become {target} "
            f"(only a {expected} batch can): run the missing stage first"
        )
        self.batch_id = batch_id
        self.current = current
        self.expected = expected
        self.target = target


class BatchClosedError(FraudpipeError):
    """New rows arrived for a batch that has already moved past `loaded`."""

    def __init__(self, batch_id: str, status: str, new_rows: int) -> None:
        super().__init__(
            f"batch {batch_id} is already {status}, and this source holds {new_rows} rows for "
            "that day that it does not: nothing was written for the day; put those rows in a "
            "file with another name (a new source) to load them"
        )
        self.batch_id = batch_id
        self.status = status
        self.new_rows = new_rows


class ContractFileError(FraudpipeError):
    """A contract's `.avsc` file is missing or is not a usable Avro record schema."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"contract {path}: {problem}: fix the file (the .avsc is the contract)")
        self.path = path


class ContractViolationError(FraudpipeError):
    """A record value breaks what its contract means (NaN amount, naive datetime, ...)."""

    def __init__(self, record: str, field: str, value: object, rule: str) -> None:
        super().__init__(
            f"{record}.{field} = {value!r} {rule}: fix the producer of this message "
            "(a consumer sends it to the dead-letter topic)"
        )
        self.record = record
        self.field = field
        self.rule = rule


class OutOfBoundsError(ContractViolationError):
    """A finite value beyond the bounds of its field (`fraudpipe.data.bounds`)."""

    def __init__(self, record: str, field: str, value: float, low: float, high: float) -> None:
        super().__init__(
            record,
            field,
            value,
            f"is outside its bounds [{low:.6g}, {high:.6g}] (FRAUDPIPE_BOUNDS_MARGIN widens them)",
        )
        self.low = low
        self.high = high


class ContractNotRegisteredError(FraudpipeError):
    """A subject the code writes to does not hold the contract's schema."""

    def __init__(self, subject: str) -> None:
        super().__init__(
            f"schema registry subject {subject} does not hold this contract's schema: "
            "run `fraudpipe contracts register`"
        )
        self.subject = subject


class SchemaRegistryRequestError(FraudpipeError):
    """The schema registry answered a request with an error fraudpipe does not expect."""

    def __init__(self, url: str, status: int, message: str) -> None:
        super().__init__(
            f"schema registry at {url} refused a request (HTTP {status}: {message}): "
            "check its log (`fraudpipe stack status` shows where it runs)"
        )
        self.status = status


class SchemaIncompatibleError(FraudpipeError):
    """The registry refused a new schema version under the subject's compatibility level."""

    def __init__(self, subject: str, detail: str) -> None:
        super().__init__(
            f"schema registry refused the new version of {subject}: {detail}: run "
            "`fraudpipe contracts check` for a field-by-field explanation, then give new fields "
            "defaults or move the change to a new topic/subject"
        )
        self.subject = subject


class ContractsCheckFailedError(FraudpipeError):
    """`contracts check` found local contracts the registry would refuse, or misconfigured."""

    def __init__(self, subjects: list[str]) -> None:
        super().__init__(
            f"{len(subjects)} contract(s) not registrable as they stand ({', '.join(subjects)}): "
            "see the reasons above"
        )
        self.subjects = subjects


class TopicSetupError(FraudpipeError):
    """A Kafka topic could not be created, described or configured."""

    def __init__(self, topic: str, problem: str) -> None:
        super().__init__(
            f"Kafka topic {topic}: {problem}: check the broker (`fraudpipe stack status`) and "
            "rerun `fraudpipe topics ensure`"
        )
        self.topic = topic


class PublishError(FraudpipeError):
    """Not every record of a batch was acknowledged by Kafka; the batch stays `loaded`."""

    def __init__(self, batch_id: str, problem: str) -> None:
        super().__init__(
            f"publishing batch {batch_id} failed: {problem}: the batch stays loaded; fix the "
            "cause and rerun `fraudpipe publish` (records already sent are deduplicated "
            "downstream)"
        )
        self.batch_id = batch_id


class PoisonMessageError(FraudpipeError):
    """A message on the scoring topic that can never be scored; it goes to the dead-letter topic.

    Subclasses name the kind; their names are the `error.type` header of the dead letter.
    """


class NotAvroError(PoisonMessageError):
    """A message value that is not registry-framed Avro at all."""

    def __init__(self, problem: str) -> None:
        super().__init__(
            f"not Confluent-framed Avro ({problem}): publish with the registry's Avro serializer "
            "(`fraudpipe publish`)"
        )


class UnknownSchemaError(PoisonMessageError):
    """A message naming a schema id the registry does not have."""

    def __init__(self, schema_id: int) -> None:
        super().__init__(
            f"schema id {schema_id} is not in the schema registry: the producer wrote with a "
            "schema that was never registered (or was deleted); run `fraudpipe contracts register`"
        )
        self.schema_id = schema_id


class WrongSchemaError(PoisonMessageError):
    """A message written with a schema of another subject or record than the topic's contract."""

    def __init__(self, schema_id: int, problem: str) -> None:
        super().__init__(
            f"schema id {schema_id} is not a Transaction schema of this topic ({problem}): "
            "publish Transaction records only to the transactions topic"
        )
        self.schema_id = schema_id


class MalformedAvroError(PoisonMessageError):
    """A registry-framed message whose Avro body does not decode with its own writer schema."""

    def __init__(self, schema_id: int | None, problem: str) -> None:
        super().__init__(
            f"Avro body does not decode with schema id {schema_id} ({problem}): the message is "
            "truncated or corrupt; re-publish the batch"
        )
        self.schema_id = schema_id


class UnknownTransactionError(PoisonMessageError):
    """A scored transaction id that PostgreSQL has no transaction row for."""

    def __init__(self, transaction_id: str) -> None:
        super().__init__(
            f"transaction {transaction_id} is not in the transactions table, so its prediction "
            "cannot reference it: ingest its batch before publishing it"
        )
        self.transaction_id = transaction_id


class ContentConflictError(PoisonMessageError):
    """A message naming a stored transaction whose content it does not carry (a forgery, or a
    producer that changed the data after it was loaded)."""

    def __init__(self, transaction_id: str, batch_id: str) -> None:
        super().__init__(
            f"transaction {transaction_id} of batch {batch_id} differs from the stored one "
            "(event time, amount or features): it was not scored; the stored row is the "
            "record, re-publish the batch if the message should have matched it"
        )
        self.transaction_id = transaction_id
        self.batch_id = batch_id


class InvalidScoreError(PoisonMessageError):
    """The serving model answered something that is not a probability for a transaction."""

    def __init__(self, transaction_id: str, model: str, score: float) -> None:
        super().__init__(
            f"{model} scored transaction {transaction_id} as {score!r}, not a probability in "
            "[0, 1]: no prediction is stored; check the model (fraudpipe models)"
        )
        self.transaction_id = transaction_id


class RefusedMessage(NamedTuple):
    """A message the broker refused for good, as it was produced, and the broker's reason."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, str | bytes | None]] | None
    reason: str


class DeliveryRefusedError(FraudpipeError):
    """The broker refused messages in a way no retry changes (too large, not authorized...)."""

    def __init__(self, refused: list[RefusedMessage]) -> None:
        topics = sorted({r.topic for r in refused})
        super().__init__(
            f"{len(refused)} message(s) to {', '.join(topics)} refused for good "
            f"(first: {refused[0].reason}): re-sending cannot help; check the topic's limits "
            "and the producer's rights"
        )
        self.refused = refused


class KafkaFatalError(FraudpipeError):
    """librdkafka reported a fatal error: the client cannot continue and must be recreated."""

    def __init__(self, client: str, error: str) -> None:
        super().__init__(
            f"Kafka {client} hit a fatal error ({error}): restart the scorer; offsets of "
            "unfinished work were not committed, so nothing is lost"
        )
        self.client = client


class PartitionsLostError(FraudpipeError):
    """The consumer group fenced a micro-batch's offsets: its partitions belong to another member.

    The micro-batch's transaction was aborted; the new owner reads it again from the last
    committed offsets.
    """

    def __init__(self, error: str) -> None:
        super().__init__(
            f"the consumer group refused this scorer's offsets ({error}): its partitions moved "
            "to another member, which scores their uncommitted messages again"
        )


class DashboardFilterError(FraudpipeError):
    """A dashboard filter or search input cannot be used as given."""

    def __init__(self, problem: str, hint: str) -> None:
        super().__init__(f"{problem}: {hint}")
        self.problem = problem


class DashboardSchemaError(FraudpipeError):
    """The database the dashboard reads lacks the tables the pipeline creates."""

    def __init__(self, database: str, missing: list[str]) -> None:
        super().__init__(
            f"database '{database}' has no table {', '.join(missing)}: "
            "apply the migrations with `fraudpipe db upgrade` (or point FRAUDPIPE_PG_DATABASE "
            "at the pipeline's database)"
        )
        self.database = database
        self.missing = missing


class DemoStepError(FraudpipeError):
    """A step of `fraudpipe demo` failed; what is done stays done, so a re-run resumes."""

    def __init__(self, step: str, problem: str) -> None:
        super().__init__(
            f"demo step '{step}' failed: {problem}: read the task log above and the Prefect run "
            "it links to, fix the cause, then run `make demo` again (finished days are no-ops)"
        )
        self.step = step


class ReviewDecisionError(FraudpipeError):
    """An analyst's decision on an alert cannot be recorded as given: nothing is recorded."""

    def __init__(self, transaction_id: str, reasons: list[str]) -> None:
        super().__init__(
            f"decision on {transaction_id[:64]} not recorded: {'; '.join(reasons)} (give your "
            "name, 1-200 printable characters, and a note of at most 2,000)"
        )
        self.reasons = reasons


class RecorderStoppedError(FraudpipeError):
    """The scoring API's decision recorder ended by itself; `serve` stopped with it."""
