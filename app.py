"""Streamlit entry point for a source checkout: `streamlit run app.py` (the UI lives in fakelens/ui.py)."""

from fakelens.ui import main

main()
