"""Publishing a validated vintage for its consumers: open-data files, the official Biểu 06
workbook and the analysts' HTML report. Modules are imported on their own, so that writing one
output never needs the libraries of another."""
