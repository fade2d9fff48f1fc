*** Settings ***
Documentation     Two tasks that pass and hand typed outputs to Interlock.
Library           OperatingSystem
Library           interlock_rpa.Outputs

*** Tasks ***
Count invoices
    ${count}=    Set Variable    ${3}
    Set Interlock Output    invoices    ${count}

Describe batch
    @{ids}=    Create List    INV-1    INV-2    INV-3
    &{totals}=    Create Dictionary    net=${100.5}    tax=${20}
    Set Interlock Outputs    ids=${ids}    totals=${totals}    ok=${True}    label=batch 7
    Create File    ${OUTPUT DIR}/summary.txt    3 invoices
