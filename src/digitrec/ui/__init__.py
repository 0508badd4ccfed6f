"""The Streamlit page: a slate to draw on, the prediction, feedback and the session's history."""
