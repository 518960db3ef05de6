"""Word lists and prompt templates the simulator draws from.

A template is a sequence of segments. A *phrase* segment holds paraphrases of one piece of
instruction (index 0 is the common wording); a *slot* segment holds values that fill it.
Legit traffic mixes popular templates that strangers repeat nearly verbatim with a long
tail of free-form requests; each campaign has its own templates.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Segment", "Template", "POPULAR_TEMPLATES", "LONG_TAIL_TEMPLATE", "PERSONA_TEMPLATE",
    "CAMPAIGN_TEMPLATES", "LOOKALIKE_TEMPLATES", "COUNTRIES", "COUNTRY_WEIGHTS",
    "COUNTRY_UTC_OFFSET",
    "RESIDENTIAL_ASNS", "MOBILE_ASNS", "HOSTING_ASNS", "ENTERPRISE_ASNS",
]

PHRASE, SLOT = "phrase", "slot"


@dataclass(frozen=True)
class Segment:
    kind: str
    choices: tuple[str, ...]


@dataclass(frozen=True)
class Template:
    name: str
    segments: tuple[Segment, ...]


def _p(text: str) -> Segment:
    return Segment(PHRASE, tuple(s.strip() for s in text.split("|")))


def _s(text: str) -> Segment:
    return Segment(SLOT, tuple(s.strip() for s in text.split("|")))


_JOBS = _s("a data analyst|a nurse|a junior developer|a marketing manager|a teacher|a product "
           "designer|an accountant|a barista|a project manager|a sales associate|a lab technician|"
           "a paralegal|a UX researcher|a warehouse supervisor|a social media coordinator")
_LANGS = _s("Spanish|French|German|Japanese|Portuguese|Hindi|Korean|Italian|Mandarin|Turkish")
_TOPICS = _s(
    "photosynthesis|the french revolution|compound interest|black holes|machine learning|"
    "climate change|the stock market|blockchain|quantum computing|the immune system|"
    "inflation|sourdough bread|marathon training|jazz harmony|ancient rome|plate tectonics|"
    "neural networks|supply chains|the electoral college|vaccines|renewable energy|"
    "sleep hygiene|linear regression|impressionist painting|the water cycle|dna replication|"
    "microeconomics|kubernetes|react hooks|sql joins|tax deductions|mortgage rates|"
    "dog training|container gardening|home espresso|chess openings|public speaking|"
    "job interviews|time management|greek mythology|the cold war|volcanoes|game theory|"
    "shakespeare's sonnets|budget travel|email etiquette|git branching|docker networking|"
    "rust ownership|regular expressions|the krebs cycle|bayes theorem|music theory|"
    "watercolor techniques|first aid|negotiation|stoicism|urban planning|coral reefs")
POPULAR_TEMPLATES: tuple[Template, ...] = (
    Template("cover_letter", (_p("write a cover letter for|draft a cover letter for|help me "
                                 "write a cover letter for"), _JOBS,
                              _p("position|role|job opening"))),
    Template("recursion", (_p("explain recursion|can you explain recursion|explain how "
                              "recursion works"),
                           _s("like I'm five|with a simple example|in plain english|using "
                              "python|with a diagram"))),
    Template("summarize", (_p("summarize this article in|give me a summary of this text in|"
                              "tl;dr this article in"),
                           _s("three bullet points|one paragraph|two sentences|five bullet "
                              "points|plain language"))),
    Template("translate", (_p("translate this email into|translate the following message to|"
                              "please translate this into"), _LANGS)),
    Template("difference", (_p("what is the difference between|explain the difference "
                               "between"),
                            _s("a list and a tuple in python|affect and effect|weather and "
                               "climate|stocks and bonds|TCP and UDP|a virus and a bacterium|"
                               "RAM and storage|empathy and sympathy|HTTP and HTTPS|a "
                               "roth and a traditional IRA"))),
    Template("plan", (_p("give me a|create a|make me a"),
                      _s("weekly workout plan|7 day meal plan|study schedule|budget outline|"
                         "travel itinerary|reading list"),
                      _p("for|suited to"),
                      _s("losing weight|a beginner|a busy student|marathon training|a family "
                         "of four|a long weekend"))),
    Template("note", (_p("write a birthday message for my|write a short poem for my|write a "
                         "thank you note to my"),
                      _s("mom|best friend|boss|coworker|grandfather|sister|teacher|partner"))),
    Template("debug", (_p("fix this|why does this|debug this"),
                       _s("python|javascript|java|sql|c++|rust|go|typescript"),
                       _p("code throw|snippet give|function raise"),
                       _s("a TypeError|an IndexError|a null pointer exception|a syntax error|a "
                          "segmentation fault|an undefined variable error|a timeout"))),
)
LONG_TAIL_TEMPLATE = Template("long_tail", (
    _s("hey|hi|please|quick question:|can you|I need help:|ok so|could you|hello|so"),
    _s("explain|summarize the debate on|give me pros and cons of|write a short essay on|"
       "list common mistakes in|make a quiz about|compare two views on|what are the basics of|"
       "suggest a project about|outline a lecture on|tell me a fun fact about|critique my "
       "notes on|brainstorm ideas around|what should I read about|create flashcards on"),
    _TOPICS,
    _s("for a beginner|in detail|briefly|for my class|for a presentation|with examples|"
       "for a 10 year old|as a table|step by step|in under 200 words|for my team|for a blog "
       "post|with sources|in a friendly tone|as bullet points"),
    _s("thanks|please|asap|if you can|no jargon|keep it casual|for tomorrow|I'm confused|"
       "be honest|cheers|it's for work|just curious|I'm stuck|again please|one more time"),
))
PERSONA_TEMPLATE = Template("persona", (
    _s("I'm a student working on|For my startup's|Quick context, this is for my|At work we "
       "maintain|For a side project about|My manager asked me about|I'm preparing a talk on|"
       "Helping my friend with|For my thesis on|Our team is building"),
    _TOPICS,
))

_PROBLEMS = _s(
    "find all integers n such that n^2 + 3n is divisible by 7|a train leaves at 3pm at 80 km/h "
    "and another at 4pm at 100 km/h, when do they meet|how many ways can 8 rooks be placed "
    "on a chessboard without attacking|prove that the square root of 2 is irrational|"
    "what is the expected number of coin flips to get two heads in a row|a ball is thrown "
    "upward at 20 m/s, find its maximum height|three boxes are mislabelled, find the minimum "
    "picks to fix them|integrate x e^x from 0 to 1|find the probability two dice sum to 9|"
    "solve 2^x = 3^(x-1)|a knight and knave puzzle with three islanders|minimise x^2 + y^2 "
    "subject to x + y = 10|how many primes are below 100|the monty hall problem with four "
    "doors|find the area of a triangle with sides 7, 8 and 9|a prisoner's dilemma repeated "
    "five times|what is the remainder of 7^222 divided by 5|a bat and a ball cost 1.10 in "
    "total|how many handshakes among 23 people|find the next term of 2, 6, 12, 20, 30")
_TOOLSETS = _s(
    "search, calculator and calendar|web_browser, python and file_reader|sql_query, email_send "
    "and scheduler|weather_api, maps and booking|github_api, shell and test_runner|crm_lookup, "
    "invoice_api and spreadsheet|vector_search, summarizer and notes|http_get, json_parser and "
    "slack_post")
_GOALS = _s(
    "book a three city trip under a fixed budget|reconcile last month's invoices against the "
    "bank export|find the cheapest supplier for 500 units and draft an order|schedule a "
    "meeting across four time zones|compile a competitor pricing report|triage the open "
    "support tickets by urgency|migrate a contact list between two CRMs|answer a question "
    "that needs three web searches|plan a product launch timeline|detect anomalies in a "
    "sales spreadsheet|summarize ten research papers into a table|build a weekly status "
    "digest from chat logs")
_CODE_TASKS = _s(
    "Implement pagination for the list endpoint|Fix the race condition in the cache layer|"
    "Add retry with exponential backoff to the HTTP client|Write unit tests for the parser|"
    "Migrate the config loader to environment variables|Remove the deprecated logging calls|"
    "Add input validation to the signup handler|Speed up the slow database query|Port the "
    "CLI from argparse to a subcommand layout|Add a health check endpoint|Fix the off-by-one "
    "error in the date range filter|Introduce dependency injection for the storage client|"
    "Implement a LRU cache for the resolver|Add streaming support to the upload route")
_CODE_FILES = _s(
    "src/api/handlers.py|lib/cache/store.ts|internal/http/client.go|src/parser/mod.rs|"
    "app/services/billing.rb|core/src/main/java/Scheduler.java|web/components/Table.tsx|"
    "pkg/db/queries.go|server/routes/upload.js|tools/cli/main.py")
_LANGS_CODE = _s("Python|TypeScript|Go|Rust|Java|Ruby|Kotlin|C++")

CAMPAIGN_TEMPLATES: dict[str, tuple[Template, ...]] = {
    "cot_elicitation": (
        Template("cot_solve", (
            _p("Solve the following|Work through this|Carefully reason about this|Think step by "
               "step about this|Analyse the following"),
            _s("algebra|geometry|probability|number theory|combinatorics|physics|logic|calculus|"
               "statistics|game theory"),
            _p("problem step by step|question one step at a time|problem in detail|exercise "
               "methodically"),
            _p("and show every step of your reasoning|writing out your complete chain of "
               "thought|explaining each intermediate step|and make all of your thinking explicit"),
            _p("before giving the final answer:|then state the final answer:|and box the answer "
               "at the end:|and only then answer:"),
            _PROBLEMS)),
        Template("cot_reveal", (
            _p("Before answering, think out loud about|Reason privately, then reveal your full "
               "reasoning about|Show your hidden reasoning for|Expose your internal thought "
               "process on"),
            _PROBLEMS,
            _p("and list every assumption you make|including the dead ends you considered|and "
               "verify each step twice|and rate your confidence after each step"))),
        Template("cot_trace", (
            _p("Give a detailed reasoning trace for|Produce a long chain of thought for|Write the "
               "full derivation of"),
            _PROBLEMS,
            _p("formatted as numbered thoughts|in thinking tags followed by the answer|as a "
               "scratchpad then a final line")))),
    "agentic_reasoning": (
        Template("agent_plan", (
            _p("You are an autonomous agent with access to the tools|Act as an agent that can "
               "call the tools|You may use the following tools:|Tools available to you:"),
            _TOOLSETS,
            _p("Plan the steps needed to|Decide which tools to call in order to|Break down the "
               "task and|Work out a sequence of actions to"),
            _GOALS,
            _p("and report each tool call with its observation.|then explain why you chose each "
               "tool.|returning a JSON list of actions.|and stop when the goal is met."))),
        Template("agent_call", (
            _p("Given the tools|Using only the tools|With the function schema for"),
            _TOOLSETS,
            _p("write the exact function calls that|emit the tool calls needed to|produce the "
               "JSON tool invocations to"),
            _GOALS)),
        Template("agent_reflect", (
            _p("Reflect on the previous tool result and choose the next action to|The last tool "
               "call failed; recover and continue to|Observation received. Update your plan "
               "to"),
            _GOALS,
            _p("using|with|via"),
            _TOOLSETS))),
    "agentic_coding": (
        Template("code_agent", (
            _p("You are a coding agent working in a|Acting as an autonomous software engineer "
               "in a|As an AI pair programmer inside a|You operate a terminal in a"),
            _LANGS_CODE,
            _p("repository.|codebase.|monorepo.|project."),
            _CODE_TASKS,
            _p("in|inside|touching"),
            _CODE_FILES,
            _p("Run the tests, read the failures and iterate until they pass, then output the "
               "final diff.|Use the shell tool to run the test suite and repeat until green; "
               "print the patch.|Execute the tests after every edit and show the final unified "
               "diff."))),
        Template("code_fix", (
            _p("Here is a failing CI run for|The test suite fails in|Debug the failing build "
               "of"),
            _CODE_FILES,
            _p("Propose a patch, apply it and keep going until you can|Iterate with the shell "
               "until you"),
            _CODE_TASKS)),
        Template("code_refactor", (
            _p("Refactor|Restructure|Rewrite"),
            _CODE_FILES,
            _p("so that you|in order to"),
            _CODE_TASKS,
            _p("showing each terminal command you run and its output.|listing every tool call "
               "and file edit.|as a sequence of shell commands and diffs.")))),
}

# Company teams and script developers: templated workloads of legitimate products and
# evaluations (one shares the coding campaign's files: teams evaluating a code assistant).
LOOKALIKE_TEMPLATES: tuple[Template, ...] = (
    Template("ticket_triage", (
        _p("Classify the following support ticket about|Triage this customer ticket about|"
           "Label this support request about"),
        _s("the billing portal|the mobile app|SSO login|the data export|invoice PDFs|API rate "
           "limits|password resets|the analytics dashboard|webhook delivery|seat management"),
        _p("by urgency and category|into bug, question or feature request|and name the owning "
           "team"),
        _p("and answer in JSON.|and reply with the label only.|then draft a short reply."))),
    Template("eval_item", (
        _p("Answer the following multiple choice question on|Evaluation item, subject:|Benchmark "
           "question on"),
        _s("high school chemistry|contract law|clinical knowledge|econometrics|world history|"
           "computer security|moral scenarios|college physics|nutrition|formal logic"),
        _p("Respond with only the letter of the correct option.|Give the final answer as A, B, C "
           "or D.|Output the answer letter on its own line."))),
    Template("code_review", (
        _p("Review this pull request diff for|Do a code review of the change to|Check this "
           "patch to"),
        _CODE_FILES,
        _p("and list bugs, style issues and missing tests.|and flag anything risky before we "
           "merge.|and summarise what it changes for the changelog."))),
    Template("extract_fields", (
        _p("Extract the|Pull out the|Return the"),
        _s("invoice number, date and total|party names and effective date|sku, quantity and unit "
           "price|name, email and company|policy number and coverage limits|shipment id and "
           "delivery address"),
        _p("from this document as JSON.|from the attached text as a table.|from the following "
           "page and nothing else."))),
    Template("call_notes", (
        _p("Summarise this sales call transcript|Write meeting notes for this transcript|"
           "Condense this customer interview"),
        _s("in five bullet points|with action items and owners|for the weekly report|in under "
           "100 words|as a CRM note|with the customer's objections"))),
)

COUNTRIES = ("US", "IN", "BR", "GB", "DE", "FR", "JP", "KR", "ID", "MX", "CA", "NG", "PH",
             "VN", "TR", "ES", "IT", "PL", "AU", "SG")
COUNTRY_WEIGHTS = (0.26, 0.12, 0.07, 0.06, 0.05, 0.04, 0.04, 0.03, 0.04, 0.04, 0.03, 0.03,
                   0.03, 0.03, 0.03, 0.02, 0.02, 0.02, 0.02, 0.02)
COUNTRY_UTC_OFFSET = (-5, 5, -3, 0, 1, 1, 9, 9, 7, -6, -5, 1, 8, 7, 3, 1, 1, 1, 10, 8)

RESIDENTIAL_ASNS = (7922, 7018, 701, 20115, 22773, 5089, 3320, 3215, 12322, 2856, 9829,
                    24560, 28573, 18881, 4766, 17676, 7713, 9299, 45899, 9121, 3352, 3269,
                    5617, 1221, 812, 6327, 29465, 4134, 8151, 9498)
MOBILE_ASNS = (21928, 22394, 20057, 45609, 55836, 26599, 12576, 3209, 37457, 17858, 132199,
               16135, 24203, 9644)
HOSTING_ASNS = (16509, 14061, 24940, 16276, 14618, 63949, 20473, 8075, 396982, 51167)
ENTERPRISE_ASNS = (3, 32, 87, 59, 25, 111, 1312, 6360, 2152, 7377, 36375, 3582, 2637, 4,
                   14041, 1239, 3356, 174, 6461, 7843)
