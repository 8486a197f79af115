"""The documents: what the report notebook shows, part VI's analyses, the build that trains
and then executes and renders the notebook, the PDF, the bonus report and the explorer."""
