"""Word lists and text templates the demo dataset is assembled from.

Everything here is plain, friendly text: no HTML and nothing hostile, so the demo
shows what a normal tenant looks like.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    """One subject a conversation is about, with the agent that answers it."""

    agent: str  # key into AGENT_SPECS
    phrase: str
    tags: tuple[str, ...]


@dataclass(frozen=True)
class KnowledgeDoc:
    """A knowledge-base document that AI answers cite."""

    title: str
    filepath: str
    snippet: str


# (key, name, description); a null description is part of the contract.
AGENT_SPECS: tuple[tuple[str, str, str | None], ...] = (
    (
        "policy",
        "Policy Assistant",
        "Answers questions about company policies, the code of conduct and "
        "internal procedures.",
    ),
    (
        "contracts",
        "Contract Reviewer",
        "Reviews NDAs, vendor agreements and contract clauses against the legal "
        "playbook.",
    ),
    (
        "finance",
        "Finance Helper",
        "Helps with expense claims, budgets, procurement thresholds and month-end "
        "close.",
    ),
    (
        "security",
        "Security Advisor",
        "Guidance on information security, data classification, incidents and "
        "access requests.",
    ),
    ("general", "General Assistant", None),
)

SUGGESTIONS: dict[str, tuple[str, ...]] = {
    "policy": (
        "Ask me what the gifts and hospitality policy allows.",
        "Check whether a side project needs a conflict-of-interest disclosure.",
        "Find the retention period for a record type.",
    ),
    "contracts": (
        "Paste a clause and I will compare it with the playbook.",
        "Draft a mutual NDA for a new vendor.",
    ),
    "finance": (
        "Is this expense within policy?",
        "Which approvals does a purchase order need?",
        "Explain a budget variance to my manager.",
    ),
    "security": (
        "How do I classify this spreadsheet?",
        "Report a suspicious email.",
    ),
    "general": ("Summarise a document for me.",),
}

ALICE_TOPICS: tuple[Topic, ...] = (
    Topic("finance", "expense policy", ("finance", "policy")),
    Topic("finance", "travel reimbursement", ("finance", "travel")),
    Topic("finance", "procurement threshold", ("finance", "procurement")),
    Topic("finance", "month-end accruals", ("finance", "close")),
    Topic("finance", "budget variance", ("finance", "reporting")),
    Topic("finance", "SOX control testing", ("finance", "sox", "audit")),
    Topic("contracts", "vendor NDA clause", ("legal", "contracts", "vendor")),
    Topic("contracts", "limitation of liability clause", ("legal", "contracts")),
    Topic("contracts", "data processing addendum", ("legal", "privacy", "gdpr")),
    Topic("contracts", "SaaS renewal terms", ("contracts", "vendor")),
    Topic("policy", "gifts and hospitality rules", ("policy", "ethics")),
    Topic("policy", "conflict of interest disclosure", ("policy", "ethics", "hr")),
    Topic("policy", "remote work policy", ("hr", "policy")),
    Topic("policy", "records retention schedule", ("records", "policy")),
    Topic("policy", "whistleblower procedure", ("ethics", "policy")),
    Topic("security", "data classification", ("security", "privacy")),
    Topic("security", "phishing report", ("security", "incident")),
    Topic("security", "quarterly access review", ("security", "audit")),
    Topic("general", "board pack summary", ("reporting",)),
    Topic("general", "training plan", ("hr", "training")),
    Topic("general", "team offsite agenda", ()),
)

BOB_TOPICS: tuple[Topic, ...] = (
    Topic("security", "firewall change request", ("security", "network")),
    Topic("security", "SSO rollout", ("security", "identity")),
    Topic("security", "laptop encryption exception", ("security", "endpoint")),
    Topic("security", "incident postmortem", ("security", "incident")),
    Topic("security", "pen test findings", ("security", "vulnerability")),
    Topic("security", "MFA enrollment", ("security", "identity")),
    Topic("general", "backup restore test", ("it", "resilience")),
    Topic("general", "on-call handbook", ("it",)),
)

TITLE_TEMPLATES: dict[str, tuple[str, ...]] = {
    "finance": (
        "{quarter} {topic} question",
        "{topic} for {dept}",
        "Is this within the {topic}?",
        "{topic}: {vendor} invoice",
    ),
    "contracts": (
        "Drafting {topic}",
        "Redlining {topic} with {vendor}",
        "{topic} review for {vendor}",
        "Second opinion on {topic}",
    ),
    "policy": (
        "Clarify {topic}",
        "{topic} - {region} office",
        "Question about {topic}",
        "{topic} for a new joiner",
    ),
    "security": (
        "{topic} follow-up",
        "Triage: {topic}",
        "{topic} for {dept}",
    ),
    "general": (
        "Summarise {topic}",
        "Help with {topic}",
        "{quarter} {topic}",
    ),
}

BOB_TITLE_TEMPLATES: tuple[str, ...] = (
    "{topic} ({ticket})",
    "{ticket}: {topic}",
    "Notes on {topic}",
    "{topic} runbook check",
)

QUARTERS = ("Q1", "Q2", "Q3", "Q4", "FY24", "FY25", "H1", "H2")
DEPARTMENTS = ("Finance", "Legal", "HR", "Sales", "Marketing", "IT", "Operations")
VENDORS = (
    "Acme Logistics",
    "Globex",
    "Initech",
    "Umbrella Supplies",
    "Stark Analytics",
    "Wayne Consulting",
    "Contoso Cloud",
)
REGIONS = ("London", "Berlin", "Singapore", "New York", "Paris", "Toronto")
APPROVERS = ("your line manager", "the budget owner", "the CFO", "Legal", "the DPO")
SYSTEMS = ("Coupa", "Workday", "ServiceNow", "SAP Concur", "DocuSign")

KNOWLEDGE_BASE: tuple[KnowledgeDoc, ...] = (
    KnowledgeDoc(
        "Travel and Expense Policy v3",
        "policies/travel-expense-policy-v3.pdf",
        "Claims must be submitted within 30 days with itemised receipts.",
    ),
    KnowledgeDoc(
        "Code of Conduct 2024",
        "policies/code-of-conduct-2024.pdf",
        "Employees must disclose any interest that could influence a decision.",
    ),
    KnowledgeDoc(
        "Vendor Onboarding Procedure",
        "procedures/vendor-onboarding.docx",
        "New vendors complete due diligence before the first purchase order.",
    ),
    KnowledgeDoc(
        "Information Security Policy",
        "policies/infosec-policy.pdf",
        "Confidential data is stored only on approved, encrypted systems.",
    ),
    KnowledgeDoc(
        "Data Retention Schedule",
        "records/data-retention-schedule.xlsx",
        "Financial records are kept for seven years after the fiscal year end.",
    ),
    KnowledgeDoc(
        "Data Processing Addendum Template",
        "legal/dpa-template.docx",
        "The processor notifies the controller of a breach without undue delay.",
    ),
    KnowledgeDoc(
        "Procurement Thresholds",
        "finance/procurement-thresholds.pdf",
        "Purchases above 10,000 need three quotes and budget owner approval.",
    ),
    KnowledgeDoc(
        "Gifts and Hospitality Guidance",
        "policies/gifts-hospitality.pdf",
        "Gifts above 100 in value are recorded in the gifts register.",
    ),
)

ATTACHMENT_NAMES = (
    "q3-report.xlsx",
    "vendor-nda-draft.docx",
    "expense-receipts.pdf",
    "board-minutes-2024-06.pdf",
    "dpia-template.docx",
    "org-chart.png",
    "invoice-4471.pdf",
    "access-review-export.csv",
)

USER_OPENERS = (
    "What does our policy say about {topic}?",
    "Can you summarise the {topic} rules for the {dept} team?",
    "Is {amount} within the limits for {topic}?",
    "Draft a short note on {topic} for {dept}.",
    "Which approvals do I need for {topic}?",
    "Give me a checklist for {topic}.",
    "How do the {region} rules on {topic} differ from head office?",
    "I am working with {vendor}. Anything special about {topic}?",
)

USER_FOLLOW_UPS = (
    "Thanks, can you make that shorter?",
    "What about contractors?",
    "Can you put that in a table?",
    "Does this apply to the {region} office as well?",
    "Which document is that from?",
    "And if the amount is {amount}?",
    "Who signs this off in {dept}?",
    "Great, can you turn it into an email to {dept}?",
)

LONG_QUESTIONS = (
    "Quick one: is {amount} for {topic} fine?",
    "Does {topic} need sign-off from {approver}?",
    "Remind me of the deadline for {topic}.",
    "Any change to {topic} this quarter?",
    "Who owns {topic} in {dept}?",
)

LONG_ANSWERS = (
    "Yes, that is within the limit for {topic}.",
    "Sign-off comes from {approver}; log it in {system}.",
    "The deadline is 30 days after the event.",
    "No change this quarter; the current version still applies.",
    "{dept} owns it, with {approver} as the escalation point.",
)
