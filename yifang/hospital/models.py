"""Tables of the hospital front end (医院前置): what hospital systems sent, the encounters and
laboratory results built from it, the cases the rules found, missed reports, syndrome counts
and the other surveillance streams.

Times: ``received_at``, ``created_at`` … are naive UTC like every stored timestamp; the
clinical times (``visit_time``, ``diagnosed_at``, ``observed_at``, ``due_at``) are wall-clock
times in the city's time zone, like the card's ``diagnosis_time``, so that a case's report
deadline compares directly with the card it should produce.

Personal data: an encounter keeps the name, document number, phone and address the hospital
sent, because the draft card is pre-filled from them; ``patient_key`` is a SHA-256 of the
hospital and its patient number (or of the document number when there is one), used to link
a person's visits and results without comparing names.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from yifang.core.audit import BigId
from yifang.core.db import Base, utcnow


class IntakeMessage(Base):
    """One message as received (FHIR bundle, HL7 v2 message, CSV file), kept whole.

    ``status``: ``accepted`` (stored), ``rejected`` (malformed or refused: ``errors`` says
    why; kept for inspection and re-processing), ``duplicate`` (the same message again:
    same sender and message id, or the same content; ``duplicate_of_id`` names the first).
    ``message_key`` is the sender's own id (HL7 MSH-10, the bundle's identifier).
    """

    __tablename__ = "hospital_intake_message"
    __table_args__ = (
        Index("ix_hospital_intake_message_key", "org_code", "message_key"),
        Index("ix_hospital_intake_message_sha", "content_sha256"),
        Index("ix_hospital_intake_message_status", "status", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(16))  # fhir, hl7-mllp, hl7-file, csv
    format: Mapped[str] = mapped_column(String(32))  # FHIR Bundle, ADT^A08, ORU^R01, csv …
    org_code: Mapped[str | None] = mapped_column(String(32))
    message_key: Mapped[str | None] = mapped_column(String(128))
    message_time: Mapped[datetime | None] = mapped_column()  # sender's clock (local)
    content_sha256: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    raw: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("hospital_intake_message.id"))
    encounters: Mapped[int] = mapped_column(Integer, default=0)
    lab_results: Mapped[int] = mapped_column(Integer, default=0)
    actor: Mapped[str] = mapped_column(String(64), default="system")


class Encounter(Base):
    """One visit (门诊/急诊/住院) at a hospital: who, when, where, what was found.

    ``visit_number`` is the hospital's own id of the visit (HL7 PV1-19, FHIR Encounter
    identifier or id); with ``org_code`` it identifies the visit, so later messages update
    it. ``source_time`` is the sender's time of the newest message applied: an older
    message arriving late fills only what is still empty (out-of-order delivery).
    """

    __tablename__ = "hospital_encounter"
    __table_args__ = (
        UniqueConstraint("org_code", "visit_number", name="hospital_encounter_visit"),
        Index("ix_hospital_encounter_patient", "patient_key"),
        Index("ix_hospital_encounter_org_day", "org_code", "visit_day"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    org_code: Mapped[str] = mapped_column(ForeignKey("organisation.code"))
    visit_number: Mapped[str] = mapped_column(String(64))
    patient_key: Mapped[str] = mapped_column(String(64))
    patient_number: Mapped[str | None] = mapped_column(String(64))  # 病案号/门诊号
    patient_name: Mapped[str | None] = mapped_column(String(40))
    id_type: Mapped[str | None] = mapped_column(String(2))
    id_number: Mapped[str | None] = mapped_column(String(32))
    sex: Mapped[str | None] = mapped_column(String(1))  # 1 男 2 女
    birth_date: Mapped[date | None] = mapped_column()
    phone: Mapped[str | None] = mapped_column(String(20))
    guardian_name: Mapped[str | None] = mapped_column(String(40))
    address_code: Mapped[str | None] = mapped_column(String(12))
    address_detail: Mapped[str | None] = mapped_column(String(100))
    occupation: Mapped[str | None] = mapped_column(String(2))
    work_unit: Mapped[str | None] = mapped_column(String(100))
    visit_time: Mapped[datetime | None] = mapped_column()
    visit_day: Mapped[date | None] = mapped_column()  # local date of visit_time
    township: Mapped[str] = mapped_column(String(12), default="")  # address_code[:9] or ""
    encounter_class: Mapped[str | None] = mapped_column(String(16))  # outpatient, inpatient …
    department: Mapped[str | None] = mapped_column(String(64))
    doctor_name: Mapped[str | None] = mapped_column(String(40))
    chief_complaint: Mapped[str | None] = mapped_column(Text)
    temperature_c: Mapped[float | None] = mapped_column(Float)
    onset_date: Mapped[date | None] = mapped_column()
    status: Mapped[str | None] = mapped_column(String(16))
    source_time: Mapped[datetime | None] = mapped_column()
    message_id: Mapped[int | None] = mapped_column(ForeignKey("hospital_intake_message.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Diagnosis(Base):
    """A diagnosis of an encounter: ICD-10 code (national clinical edition) and its text.

    ``entry_key`` is the sender's id of the entry (FHIR Condition id, DG1 set id and code);
    ``refuted`` marks a diagnosis withdrawn by a later message (verification status
    refuted / entered-in-error)."""

    __tablename__ = "hospital_diagnosis"
    __table_args__ = (
        UniqueConstraint("encounter_id", "entry_key", name="hospital_diagnosis_entry"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    encounter_id: Mapped[int] = mapped_column(ForeignKey("hospital_encounter.id"), index=True)
    entry_key: Mapped[str] = mapped_column(String(96))
    icd10: Mapped[str | None] = mapped_column(String(32))
    text: Mapped[str | None] = mapped_column(String(200))
    diagnosed_at: Mapped[datetime | None] = mapped_column()
    kind: Mapped[str | None] = mapped_column(String(16))  # primary, secondary, admitting …
    refuted: Mapped[bool] = mapped_column(Boolean, default=False)
    source_time: Mapped[datetime | None] = mapped_column()


class LabResult(Base):
    """A laboratory result of a patient (HL7 OBX, FHIR Observation / DiagnosticReport).

    ``positive`` is the sender's own flag where it gave one (abnormal flag, interpretation),
    else read from the result text by the lab rules. ``result_key`` (unique per hospital)
    lets a corrected result replace the first."""

    __tablename__ = "hospital_lab_result"
    __table_args__ = (
        UniqueConstraint("org_code", "result_key", name="hospital_lab_result_key"),
        Index("ix_hospital_lab_result_patient", "patient_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    org_code: Mapped[str] = mapped_column(ForeignKey("organisation.code"))
    result_key: Mapped[str] = mapped_column(String(128))
    encounter_id: Mapped[int | None] = mapped_column(
        ForeignKey("hospital_encounter.id"), index=True
    )
    patient_key: Mapped[str] = mapped_column(String(64))
    test_code: Mapped[str | None] = mapped_column(String(64))
    test_name: Mapped[str | None] = mapped_column(String(128))
    result_text: Mapped[str | None] = mapped_column(String(200))
    value_num: Mapped[float | None] = mapped_column(Float)
    unit: Mapped[str | None] = mapped_column(String(32))
    positive: Mapped[bool | None] = mapped_column(Boolean)
    specimen: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str | None] = mapped_column(String(16))  # final, preliminary, corrected
    observed_at: Mapped[datetime | None] = mapped_column()
    source_time: Mapped[datetime | None] = mapped_column()
    message_id: Mapped[int | None] = mapped_column(ForeignKey("hospital_intake_message.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class HospitalRule(Base):
    """An editable rule: ICD-10 → disease, lab result → disease, syndrome sign or definition,
    or a negation word list. ``definition`` holds the rule's fields (see ``schemas``).

    Loaded from ``yifang/hospital/data``; a reload never overwrites a rule whose
    ``edited_by`` is set (the CDC's changes stay)."""

    __tablename__ = "hospital_rule"
    __table_args__ = (UniqueConstraint("kind", "code", name="hospital_rule_kind_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # icd10, lab, sign, syndrome, negation
    code: Mapped[str] = mapped_column(String(64))
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    note: Mapped[str | None] = mapped_column(Text)
    edited_by: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class IdentifiedCase(Base):
    """A notifiable case the rules found in an encounter or a lab result.

    ``status``: ``draft`` (a draft card awaits the doctor), ``reported`` (the doctor confirmed
    and the card was submitted), ``rejected`` (the doctor said it is not a case, with a
    reason), ``already_reported`` (the person already has a card for this disease within its
    duplicate window: no second draft), ``merged`` (a second finding of a case still in
    draft), ``withdrawn`` (its evidence was refuted before the doctor acted).
    ``diagnosed_at`` starts the report clock; ``due_at`` = ``diagnosed_at`` + the disease's
    ``report_limit_hours`` (local wall-clock).
    """

    __tablename__ = "hospital_case"
    __table_args__ = (
        UniqueConstraint("encounter_id", "disease_group", name="hospital_case_encounter_disease"),
        Index("ix_hospital_case_status_due", "status", "due_at"),
        Index("ix_hospital_case_person", "patient_key", "disease_group"),
        Index("ix_hospital_case_org", "org_code", "diagnosed_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    encounter_id: Mapped[int] = mapped_column(ForeignKey("hospital_encounter.id"))
    org_code: Mapped[str] = mapped_column(ForeignKey("organisation.code"))
    patient_key: Mapped[str] = mapped_column(String(64))
    disease_code: Mapped[str] = mapped_column(ForeignKey("disease.code"))
    disease_group: Mapped[str] = mapped_column(String(16))  # parent disease, or itself
    subtype_code: Mapped[str | None] = mapped_column(String(16))
    classification: Mapped[str] = mapped_column(String(2))
    chronicity: Mapped[str | None] = mapped_column(String(2))
    rule_kind: Mapped[str] = mapped_column(String(16))  # icd10, lab
    rule_code: Mapped[str] = mapped_column(String(64))
    evidence: Mapped[str] = mapped_column(String(200))
    diagnosed_at: Mapped[datetime] = mapped_column()
    due_at: Mapped[datetime] = mapped_column()
    status: Mapped[str] = mapped_column(String(20), default="draft")
    card_id: Mapped[int | None] = mapped_column(ForeignKey("card.id"), index=True)
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("hospital_case.id"))
    draft_errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column()
    reject_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MissedReport(Base):
    """A missed report (漏报): an identified case still without a submitted card when its
    time limit passed, flagged to the hospital's prevention department (预防保健科).

    ``resolved_at`` is set when the card is finally submitted (a late report) or the case is
    rejected or found already reported; the row stays, so the hospital's indicators count
    every miss."""

    __tablename__ = "hospital_missed_report"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("hospital_case.id"), unique=True)
    org_code: Mapped[str] = mapped_column(ForeignKey("organisation.code"), index=True)
    disease_code: Mapped[str] = mapped_column(ForeignKey("disease.code"))
    diagnosed_at: Mapped[datetime] = mapped_column()
    due_at: Mapped[datetime] = mapped_column()
    flagged_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column()
    resolution: Mapped[str | None] = mapped_column(String(20))  # reported_late, rejected …


class EncounterSyndrome(Base):
    """A syndrome an encounter was classified into (one row per encounter and syndrome)."""

    __tablename__ = "hospital_encounter_syndrome"
    __table_args__ = (
        UniqueConstraint("encounter_id", "syndrome", name="hospital_encounter_syndrome_pair"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    encounter_id: Mapped[int] = mapped_column(ForeignKey("hospital_encounter.id"), index=True)
    syndrome: Mapped[str] = mapped_column(String(32))


class SyndromeCount(Base):
    """Encounters per syndrome, hospital, patients' township and day: a daily series of its
    own for the early-warning engine (``day`` is the local visit date; ``township`` the
    9-digit code of the patient's address, ``""`` when unknown; ``visits`` all encounters of
    that hospital, township and day, the denominator)."""

    __tablename__ = "hospital_syndrome_count"
    __table_args__ = (
        UniqueConstraint("syndrome", "org_code", "township", "day", name="hospital_syndrome_cell"),
        Index("ix_hospital_syndrome_count_day", "day", "syndrome"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    syndrome: Mapped[str] = mapped_column(String(32))
    org_code: Mapped[str] = mapped_column(String(32))
    township: Mapped[str] = mapped_column(String(12))
    day: Mapped[date] = mapped_column()
    count: Mapped[int] = mapped_column(Integer)
    visits: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class StreamObservation(Base):
    """One value of another surveillance stream (多点触发): school absenteeism, pharmacy
    sales, ILI%, multiplex respiratory positivity, livestock brucellosis …

    ``value`` over ``denominator`` (when given) is the rate; ``place`` names a school,
    pharmacy or farm inside ``region_code`` (``""`` for a whole region)."""

    __tablename__ = "hospital_stream_observation"
    __table_args__ = (
        UniqueConstraint("stream", "region_code", "place", "day", name="hospital_stream_cell"),
        Index("ix_hospital_stream_observation_day", "stream", "day"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    stream: Mapped[str] = mapped_column(String(32))
    region_code: Mapped[str] = mapped_column(String(12))
    place: Mapped[str] = mapped_column(String(100), default="")
    day: Mapped[date] = mapped_column()
    value: Mapped[float] = mapped_column(Float)
    denominator: Mapped[float | None] = mapped_column(Float)
    source: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
