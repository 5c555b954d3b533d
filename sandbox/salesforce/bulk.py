"""Bulk API 2.0 on the Salesforce side: query jobs and ingest jobs, CSV in and out.

Query jobs snapshot their result at creation and serve it in pages of ``maxRecords`` with the
``Sforce-Locator`` header; ingest jobs take CSV uploads, apply them when closed
(``UploadComplete``) and serve per-record ``successfulResults``, ``failedResults`` and
``unprocessedrecords``. Polling a job moves it along (``UploadComplete`` -> ``InProgress`` ->
``JobComplete``), as a real org's queue would.
"""

from __future__ import annotations

import base64
import csv
import io
from typing import Any

from sandbox.http import Response, json_response
from sandbox.ids import sf_id
from sandbox.org import RecordError, sf_text
from sandbox.results import ResultSet
from sandbox.salesforce.query import run_soql
from sandbox.salesforce.rest import create_record
from sandbox.salesforce.routes import Call
from sandbox.salesforce.state import (
    MAX_CURSORS,
    USER_ID,
    Job,
    SalesforceState,
    bad_json,
    errors,
    lock_error,
    not_found,
)

QUERY = "V2Query"
INGEST = "V2Ingest"
INGEST_OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")


class BulkJobs:
    """``/jobs/query`` and ``/jobs/ingest``."""

    def __init__(self, state: SalesforceState) -> None:
        self.state = state
        self.org = state.org

    # -- shared ------------------------------------------------------------------------------
    def _job_base(self, version: str, job_id: str, kind: str) -> dict[str, Any]:
        stamp = sf_text(self.org.tick())
        return {
            "id": job_id,
            "createdById": USER_ID,
            "createdDate": stamp,
            "systemModstamp": stamp,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(version),
            "jobType": kind,
            "lineEnding": "LF",
            "columnDelimiter": "COMMA",
            "numberRecordsProcessed": 0,
            "retries": 0,
            "totalProcessingTime": 0,
        }

    def _list(self, kind: str) -> Response:
        jobs = [j.info for j in self.state.jobs.values() if j.info["jobType"] == kind]
        return json_response(200, {"done": True, "records": jobs})

    def _job(self, call: Call, kind: str) -> Job | None:
        job = self.state.jobs.get(call.params["job"])
        return job if job is not None and job.info["jobType"] == kind else None

    @staticmethod
    def _poll(job: Job) -> None:
        if job.info["state"] == "UploadComplete":
            job.info["state"] = "InProgress"
        elif job.info["state"] == "InProgress":
            job.info["state"] = "JobComplete"

    # -- query jobs --------------------------------------------------------------------------
    def list_query_jobs(self, call: Call) -> Response:
        """``GET /jobs/query``: every query job."""
        return self._list(QUERY)

    def create_query_job(self, call: Call) -> Response:
        """``POST /jobs/query``: snapshot the query's result now."""
        try:
            body = call.req.json()
        except ValueError:
            return bad_json()
        op = body.get("operation")
        if op not in ("query", "queryAll"):
            return errors(400, "INVALIDJOB", "operation must be query or queryAll")
        soql = body.get("query") or ""
        query, result = run_soql(self.state, soql, op == "queryAll", call.version)
        if isinstance(result, int):
            return errors(400, "INVALIDJOB", "Aggregate queries are not supported by Bulk API 2.0")
        job_id = sf_id("750", self.state.next_number())
        info = self._job_base(call.version, job_id, QUERY)
        info.update(operation=op, object=query.obj.name, state="UploadComplete", query=soql)
        job = Job(info, result=result)
        job.info["numberRecordsProcessed"] = result.total
        with self.state.lock:
            self.state.jobs[job_id] = job
            self._forget_old_jobs()
        return json_response(200, {k: v for k, v in info.items() if k != "query"})

    def _forget_old_jobs(self) -> None:
        """Keep the newest query jobs' results (snapshots cost disk); Salesforce keeps 7 days."""
        jobs = self.state.jobs
        query_jobs = [j for j in jobs.values() if j.result is not None]
        for old in query_jobs[:-MAX_CURSORS]:
            assert old.result is not None
            old.result.drop()
            old.result = None
            jobs.pop(old.info["id"], None)

    def query_job_info(self, call: Call) -> Response:
        """``GET /jobs/query/{job}``: poll a query job."""
        job = self._job(call, QUERY)
        if job is None:
            return not_found()
        self._poll(job)
        return json_response(200, {k: v for k, v in job.info.items() if k != "query"})

    def abort_query_job(self, call: Call) -> Response:
        """``PATCH /jobs/query/{job}``: abort a query job."""
        job = self._job(call, QUERY)
        if job is None:
            return not_found()
        job.info["state"] = "Aborted"
        return json_response(200, job.info)

    def delete_query_job(self, call: Call) -> Response:
        """``DELETE /jobs/query/{job}``: forget a query job and its result."""
        job = self._job(call, QUERY)
        if job is None:
            return not_found()
        with self.state.lock:
            self.state.jobs.pop(call.params["job"], None)
        if job.result is not None:
            job.result.drop()
        return Response(204)

    def query_results(self, call: Call) -> Response:
        """``GET /jobs/query/{job}/results``: a page of CSV and the next ``Sforce-Locator``."""
        job = self._job(call, QUERY)
        if job is None:
            return not_found()
        if job.info["state"] != "JobComplete":
            job.info["state"] = "JobComplete"  # a client that skips polling still gets data
        assert job.result is not None
        return self._results_csv(job.result, call)

    def _results_csv(self, result: ResultSet, call: Call) -> Response:
        try:
            start = _decode_locator(call.req.query.get("locator", ""))
            size = int(call.req.query.get("maxRecords") or 100_000)
        except ValueError:
            return errors(400, "INVALID_LOCATOR", "invalid locator or maxRecords")
        end = min(result.total, start + max(1, size))
        body, count = result.page_csv(start, end)
        locator = _encode_locator(end) if end < result.total else "null"
        return Response(
            200,
            body,
            content_type="text/csv",
            headers={"Sforce-Locator": locator, "Sforce-NumberOfRecords": str(count)},
        )

    # -- ingest jobs -------------------------------------------------------------------------
    def list_ingest_jobs(self, call: Call) -> Response:
        """``GET /jobs/ingest``: every ingest job."""
        return self._list(INGEST)

    def create_ingest_job(self, call: Call) -> Response:
        """``POST /jobs/ingest``: open a job for CSV uploads."""
        try:
            body = call.req.json()
        except ValueError:
            return bad_json()
        op = body.get("operation")
        if op not in INGEST_OPERATIONS:
            return errors(400, "INVALIDJOB", f"InvalidJob : Invalid operation: {op}")
        od = self.state.object_named(str(body.get("object", "")))
        if od is None:
            return errors(400, "INVALIDJOB", f"InvalidJob : Invalid object: {body.get('object')}")
        ext = body.get("externalIdFieldName")
        if op == "upsert" and (not ext or od.field(str(ext)) is None):
            return errors(400, "INVALIDJOB", "InvalidJob : externalIdFieldName is required")
        job_id = sf_id("750", self.state.next_number())
        info = self._job_base(call.version, job_id, INGEST)
        info.update(
            operation=op,
            object=od.name,
            state="Open",
            externalIdFieldName=ext,
            contentUrl=f"services/data/v{call.version}/jobs/ingest/{job_id}/batches",
            lineEnding=body.get("lineEnding", "LF"),
            columnDelimiter=body.get("columnDelimiter", "COMMA"),
            numberRecordsFailed=0,
        )
        with self.state.lock:
            self.state.jobs[job_id] = Job(info)
        return json_response(200, info)

    def ingest_job_info(self, call: Call) -> Response:
        """``GET /jobs/ingest/{job}``: poll an ingest job."""
        job = self._job(call, INGEST)
        if job is None:
            return not_found()
        self._poll(job)
        return json_response(200, job.info)

    def set_ingest_state(self, call: Call) -> Response:
        """``PATCH /jobs/ingest/{job}``: close (``UploadComplete``, applies the CSV) or abort."""
        job = self._job(call, INGEST)
        if job is None:
            return not_found()
        try:
            state = call.req.json().get("state")
        except (ValueError, AttributeError):
            return bad_json()
        if state == "Aborted":
            job.info["state"] = "Aborted"
            return json_response(200, job.info)
        if state == "UploadComplete" and job.info["state"] == "Open":
            self._process_ingest(job)
            if job.info["state"] != "Failed":
                job.info["state"] = "UploadComplete"
            return json_response(200, job.info)
        return errors(400, "INVALIDSTATUS", f"Invalid state transition to {state}")

    def delete_ingest_job(self, call: Call) -> Response:
        """``DELETE /jobs/ingest/{job}``: forget an ingest job."""
        job = self._job(call, INGEST)
        if job is None:
            return not_found()
        self.state.jobs.pop(call.params["job"], None)
        return Response(204)

    def upload(self, call: Call) -> Response:
        """``PUT /jobs/ingest/{job}/batches``: one CSV upload to an open job."""
        job = self._job(call, INGEST)
        if job is None:
            return not_found()
        if job.info["state"] != "Open":
            return errors(409, "INVALIDSTATUS", "Job is not open for uploads")
        job.uploads.append(call.req.body)
        return Response(201)

    def successful_results(self, call: Call) -> Response:
        """``GET /jobs/ingest/{job}/successfulResults``: ``sf__Id``, ``sf__Created``, the row."""
        return self._ingest_results(call, "successfulResults")

    def failed_results(self, call: Call) -> Response:
        """``GET /jobs/ingest/{job}/failedResults``: ``sf__Id``, ``sf__Error``, the row."""
        return self._ingest_results(call, "failedResults")

    def unprocessed_records(self, call: Call) -> Response:
        """``GET /jobs/ingest/{job}/unprocessedrecords``: rows a failed job never applied."""
        return self._ingest_results(call, "unprocessedrecords")

    def _ingest_results(self, call: Call, kind: str) -> Response:
        job = self._job(call, INGEST)
        if job is None:
            return not_found()
        buf = io.StringIO()
        writer = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\n")
        if kind == "successfulResults":
            writer.writerow(["sf__Id", "sf__Created", *job.header])
            writer.writerows(job.success)
        elif kind == "failedResults":
            writer.writerow(["sf__Id", "sf__Error", *job.header])
            writer.writerows(job.failed)
        else:
            writer.writerow(job.header)
            writer.writerows(job.unprocessed)
        return Response(200, buf.getvalue().encode(), content_type="text/csv")

    def _process_ingest(self, job: Job) -> None:
        """Apply an ingest job's CSV now; results are served once the job is polled."""
        info = job.info
        od = self.state.objects[info["object"]]
        op = info["operation"]
        header: list[str] = []
        rows: list[list[str]] = []

        def fail(message: str) -> None:
            # A job that fails before processing wrote nothing: its rows are what
            # unprocessedrecords lists ("for failed or aborted jobs", Bulk API 2.0 docs).
            info.update(state="Failed", errorMessage=message)
            job.unprocessed = [row for row in rows if any(row)]

        for part in job.uploads:
            reader = csv.reader(io.StringIO(part.decode("utf-8-sig")))
            try:
                head = next(reader)
            except StopIteration:
                continue
            if header and head != header:
                fail("InvalidBatch : header mismatch")
                return
            header = head
            job.header = header
            rows.extend(reader)
        for name in header:
            if od.field(name) is None:
                fail(f"InvalidBatch : Field name not found : {name}")
                return
        lower = [h.lower() for h in header]
        id_pos = lower.index("id") if "id" in lower else None
        if op in ("update", "delete", "hardDelete") and id_pos is None:
            fail("InvalidBatch : Field name not found : Id")
            return
        updates: list[tuple[str, dict[str, Any]]] = []
        success_rows: list[list[str]] = []
        for row in rows:
            if not any(row):
                continue
            values = {
                h: (None if v == "#N/A" else v)
                for h, v in zip(header, row, strict=False)
                if v != "" and h.lower() != "id"
            }
            rid_raw = row[id_pos] if id_pos is not None and id_pos < len(row) else ""
            if self.state.faults.lock_row():
                job.failed.append([rid_raw, lock_error().as_bulk(), *row])
                continue
            if op in ("delete", "hardDelete"):
                record = self.org.get(od.name, rid_raw) if rid_raw else None
                if record is None or (record["IsDeleted"] and op == "delete"):
                    job.failed.append([rid_raw, "ENTITY_IS_DELETED:entity is deleted:--", *row])
                    continue
                if op == "delete":
                    self.org.soft_delete(od.name, record["Id"])
                else:
                    self.org.hard_delete(od.name, record["Id"])
                job.success.append([record["Id"], "false", *row])
                continue
            if op == "insert" or (op == "upsert" and not rid_raw):
                result = create_record(self.org, od, values)
                if result["success"]:
                    job.success.append([result["id"], "true", *row])
                else:
                    first = result["errors"][0]
                    err = RecordError(first["statusCode"], first["message"], first["fields"])
                    job.failed.append(["", err.as_bulk(), *row])
                continue
            rid, stored, errs = self.org.validate_update(od.name, rid_raw, values)
            if errs:
                job.failed.append([rid_raw, errs[0].as_bulk(), *row])
                continue
            updates.append((rid, stored))
            success_rows.append([rid, "false", *row])
        self.org.apply_updates(od.name, updates)
        job.success.extend(success_rows)
        info["numberRecordsProcessed"] = len(job.success) + len(job.failed)
        info["numberRecordsFailed"] = len(job.failed)


def _encode_locator(offset: int) -> str:
    return base64.b64encode(str(offset).encode()).decode().rstrip("=")


def _decode_locator(text: str) -> int:
    if not text or text == "null":
        return 0
    padded = text + "=" * (-len(text) % 4)
    return int(base64.b64decode(padded).decode())
