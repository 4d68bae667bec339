"""Long documents: chunk -> summarise -> aggregate (map-reduce), BM25-grounded questions, schema extraction.

Example:
    assay doc summarize report.md --budget 2000
    assay doc ask report.md "When was the plant opened?"
    assay doc extract invoice.txt --schema invoice.schema.json
"""
